// Plain-loop reference helpers for op tests: row-major index arithmetic and NumPy broadcasting, written
// independently of the engine so that a test compares ONNX Runtime against straightforward math.

export function elementCountOf(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Multi-index of flat position `flat` in a row-major array of `shape`. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let flat = 0;
  for (let i = 0; i < shape.length; i++) flat = flat * shape[i] + idx[i];
  return flat;
}

/** NumPy broadcast result shape (assumes the shapes are compatible). */
export function broadcastShape(...shapes: ReadonlyArray<readonly number[]>): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    out.push(Math.max(...shapes.map((s) => s[s.length - rank + i] ?? 1)));
  }
  return out;
}

/** Flat index into an array of `shape` for an output multi-index `outIdx` under broadcasting. */
export function broadcastSource(outIdx: readonly number[], shape: readonly number[]): number {
  const offset = outIdx.length - shape.length;
  let flat = 0;
  for (let i = 0; i < shape.length; i++) flat = flat * shape[i] + (shape[i] === 1 ? 0 : outIdx[offset + i]);
  return flat;
}

/** Element-wise f over broadcast inputs. */
export function broadcastMap(
  inputs: ReadonlyArray<{ shape: readonly number[]; data: ArrayLike<number> }>,
  f: (...xs: number[]) => number,
): { shape: number[]; data: Float64Array } {
  const shape = broadcastShape(...inputs.map((t) => t.shape));
  const n = elementCountOf(shape);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, shape);
    data[i] = f(...inputs.map((t) => t.data[broadcastSource(idx, t.shape)]));
  }
  return { shape, data };
}

/** erf by its Maclaurin series (|x| <= 4 here; double precision keeps ~1e-10 accuracy). */
export function erfRef(x: number): number {
  if (Math.abs(x) > 4) return Math.sign(x) * (1 - 1e-8);
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
    if (Math.abs(term) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
