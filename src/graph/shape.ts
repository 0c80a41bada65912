// Static shapes with symbolic dimensions. A dimension is a number, or a string naming a size known only at run time
// ("B", "H", "N", or an expression such as "H*W") so one compiled graph serves every batch and resolution.
// Symbolic dimensions are labels for checking and for ONNX dim_param; run-time values come from Shape ops.

export type Dim = number | string;
export type Shape = readonly Dim[];

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

/** True when two dimensions may be equal: equal numbers, equal labels, or a label against anything. */
export function dimsCompatible(a: Dim, b: Dim): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  return true;
}

/** The better-known of two dimensions that must be equal (a number beats a label). */
export function unifyDims(a: Dim, b: Dim): Dim {
  return typeof a === 'number' ? a : b;
}

export function mulDimLabels(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  return `${wrap(a)}*${wrap(b)}`;
}

export function divDimLabel(a: Dim, k: number): Dim {
  if (typeof a === 'number') {
    if (a % k !== 0) throw new Error(`dimension ${a} is not divisible by ${k}`);
    return a / k;
  }
  return k === 1 ? a : `${wrap(a)}/${k}`;
}

function wrap(d: Dim): string {
  return typeof d === 'string' && /[*/+-]/.test(d) ? `(${d})` : String(d);
}

/** NumPy-style broadcasting of static shapes; throws naming the op when two fixed sizes disagree. */
export function broadcastShapes(op: string, shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1) continue;
      if (dim === 1) {
        dim = d;
      } else if (typeof dim === 'number' && typeof d === 'number' && dim !== d) {
        throw new Error(`${op}: shapes ${shapes.map(formatShape).join(' and ')} cannot be broadcast (axis ${i})`);
      } else {
        dim = unifyDims(dim, d);
      }
    }
    out.push(dim);
  }
  return out;
}

export function normalizeAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}
