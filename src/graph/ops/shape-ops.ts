// Shape manipulation: run-time dimensions, Reshape, Transpose, Concat, Split, Slice, Gather, Pad, Expand, Cast,
// Squeeze/Unsqueeze, Range, CumSum.

import { DType } from '../../io/host-tensor.js';
import { Graph, Tensor } from '../graph.js';
import { ONNX_DTYPE } from '../onnx-emit.js';
import { Dim, Shape, divDimLabel, formatShape, mulDimLabels, normalizeAxis, unifyDims } from '../shape.js';
import { describe, expectDtype, expectSameDtype, scalarLike } from './check.js';

/**
 * A dimension known at build time as a label (or number) and at run time as an int64 [1] tensor, so reshapes can
 * name sizes that vary between runs ("h", "w", "B*N").
 */
export interface SymDim {
  readonly value: Tensor;
  readonly label: Dim;
}

export type DimSpec = number | SymDim;

const shapeCache = new WeakMap<Tensor, Tensor>();

/** Shape(x) as int64 [rank], shared per tensor. */
export function shapeOf(x: Tensor): Tensor {
  let s = shapeCache.get(x);
  if (!s) {
    s = x.graph.node1('Shape', [x], 'int64', [x.rank]);
    shapeCache.set(x, s);
  }
  return s;
}

/** Dimension `axis` of x; static dimensions become constants (no Shape op). */
export function dimOf(x: Tensor, axis: number): SymDim {
  const a = normalizeAxis('dimOf', axis, x.rank);
  const label = x.shape[a];
  if (typeof label === 'number') return { value: x.graph.int64s([label]), label };
  const value = x.graph.node1('Gather', [shapeOf(x), x.graph.int64s([a])], 'int64', [1], { axis: 0 });
  return { value, label };
}

export function constDim(g: Graph, n: number): SymDim {
  return { value: g.int64s([n]), label: n };
}

export function mulDims(a: SymDim, b: SymDim | number): SymDim {
  const bb = typeof b === 'number' ? constDim(a.value.graph, b) : b;
  if (typeof a.label === 'number' && typeof bb.label === 'number') return constDim(a.value.graph, a.label * bb.label);
  return { value: a.value.graph.node1('Mul', [a.value, bb.value], 'int64', [1]), label: mulDimLabels(a.label, bb.label) };
}

export function divDim(a: SymDim, k: number): SymDim {
  const label = divDimLabel(a.label, k);
  if (typeof label === 'number') return constDim(a.value.graph, label);
  return { value: a.value.graph.node1('Div', [a.value, a.value.graph.int64s([k])], 'int64', [1]), label };
}

/**
 * Reshape to `dims`: numbers are fixed sizes (-1 = inferred, as ONNX), SymDims are run-time sizes.
 * The element count is checked when every size is known at build time.
 */
export function reshape(x: Tensor, dims: readonly DimSpec[]): Tensor {
  const g = x.graph;
  const labels: Dim[] = dims.map((d) => (typeof d === 'number' ? d : d.label));
  const inferred = labels.filter((d) => d === -1).length;
  if (inferred > 1) throw new Error(`Reshape ${describe(x)} -> ${formatShape(labels)}: at most one -1`);
  const known = (s: readonly Dim[]) => s.every((d) => typeof d === 'number');
  if (known(x.shape)) {
    const total = (x.shape as number[]).reduce((p, d) => p * d, 1);
    const fixed = labels.filter((d) => d !== -1);
    if (known(fixed)) {
      const prod = (fixed as number[]).reduce((p, d) => p * d, 1);
      if (inferred === 1) {
        if (prod === 0 || total % prod !== 0) {
          throw new Error(`Reshape ${describe(x)} -> ${formatShape(labels)}: ${total} elements do not fit`);
        }
        labels[labels.indexOf(-1)] = total / prod;
      } else if (prod !== total) {
        throw new Error(`Reshape ${describe(x)} -> ${formatShape(labels)}: ${total} elements cannot become ${prod}`);
      }
    }
  }
  if (inferred === 1 && labels.includes(-1)) labels[labels.indexOf(-1)] = `${x.name}_inferred`;
  const constantTarget = constantShapeSpec(x, dims);
  if (constantTarget) return g.node1('Reshape', [x, g.int64s(constantTarget)], x.dtype, labels);
  // Sizes read at run time may be 0 (an empty prompt part): allowzero keeps a 0 a 0 (by default ONNX copies the
  // input's size there). One Concat per distinct target: the labels name the sizes, whichever tensor they came from.
  const key = `reshape-target:${dims.map((d) => (typeof d === 'number' ? d : `<${d.label}>`)).join(',')}`;
  const target = g.shared(key, () =>
    g.node1('Concat', dims.map((d) => (typeof d === 'number' ? g.int64s([d]) : d.value)), 'int64', [dims.length], { axis: 0 }),
  );
  return g.node1('Reshape', [x, target], x.dtype, labels, { allowzero: 1 });
}

/**
 * The reshape target as constants, when ONNX can say it so, else undefined. Constant targets spare the Shape /
 * Gather / Concat chain a run-time one needs (a third of Sana-600M's nodes; ONNX Runtime's session load grows with
 * the node count). A run-time size at the same axis and with the same label as the input's becomes 0 (ONNX: copy
 * that input size, which is right even when it is 0); a single run-time size among positive constants becomes -1
 * (inferred; also right for 0 elements). -1 next to copies is not used: ONNX Runtime cannot infer -1 when a copied
 * size is 0.
 */
function constantShapeSpec(x: Tensor, dims: readonly DimSpec[]): number[] | undefined {
  const copied = dims.map((d, i) => (typeof d !== 'number' && typeof d.label === 'string' && i < x.rank && x.shape[i] === d.label ? 0 : d));
  if (copied.every((d) => typeof d === 'number')) return copied as number[];
  const runTime = dims.filter((d) => typeof d !== 'number');
  if (runTime.length === 1 && dims.every((d) => typeof d !== 'number' || d > 0)) return dims.map((d) => (typeof d === 'number' ? d : -1));
  return undefined;
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) {
    throw new Error(`Transpose ${describe(x)}: perm [${perm.join(', ')}] is not a permutation of ${x.rank} axes`);
  }
  return x.graph.node1('Transpose', [x], x.dtype, perm.map((p) => x.shape[p]), { perm: [...perm] });
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('Concat: no inputs');
  const dtype = expectSameDtype('Concat', ...xs);
  const rank = xs[0].rank;
  const a = normalizeAxis('Concat', axis, rank);
  const shape: Dim[] = [...xs[0].shape];
  let total: Dim = 0;
  for (const t of xs) {
    if (t.rank !== rank) throw new Error(`Concat: ranks differ: ${xs.map(describe).join(', ')}`);
    for (let i = 0; i < rank; i++) {
      if (i === a) continue;
      const d0 = shape[i];
      const d = t.shape[i];
      if (typeof d0 === 'number' && typeof d === 'number' && d0 !== d) {
        throw new Error(`Concat on axis ${a}: axis ${i} differs: ${xs.map(describe).join(', ')}`);
      }
      shape[i] = unifyDims(d0, d);
    }
    total = typeof total === 'number' && typeof t.shape[a] === 'number' ? total + (t.shape[a] as number) : `${total}+${t.shape[a]}`;
  }
  shape[a] = total;
  return xs[0].graph.node1('Concat', [...xs], dtype, shape, { axis: a });
}

/** Split along `axis` into pieces of the given (static) sizes. */
export function split(x: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
  const a = normalizeAxis('Split', axis, x.rank);
  const d = x.shape[a];
  const sum = sizes.reduce((p, s) => p + s, 0);
  if (typeof d === 'number' && d !== sum) {
    throw new Error(`Split ${describe(x)} on axis ${a}: sizes [${sizes.join(', ')}] sum to ${sum}, not ${d}`);
  }
  const outs = sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((dd, i) => (i === a ? s : dd)) }));
  return x.graph.node('Split', [x, x.graph.int64s(sizes)], outs, { axis: a });
}

/** Split along `axis` into pieces of run-time sizes (SymDims, e.g. a cached prefix and the new tokens). */
export function splitDims(x: Tensor, axis: number, sizes: readonly SymDim[]): Tensor[] {
  const a = normalizeAxis('Split', axis, x.rank);
  const g = x.graph;
  const sizeTensor = g.node1('Concat', sizes.map((d) => d.value), 'int64', [sizes.length], { axis: 0 });
  const outs = sizes.map((d) => ({ dtype: x.dtype, shape: x.shape.map((dd, i) => (i === a ? d.label : dd)) }));
  return g.node('Split', [x, sizeTensor], outs, { axis: a });
}

/** Slice [start, end) on each listed axis (static bounds; negative counts from the end as ONNX). */
export function slice(x: Tensor, axes: readonly number[], starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor {
  const g = x.graph;
  const shape: Dim[] = [...x.shape];
  axes.forEach((axis, i) => {
    const a = normalizeAxis('Slice', axis, x.rank);
    const d = shape[a];
    const step = steps?.[i] ?? 1;
    if (step === 0) throw new Error(`Slice ${describe(x)}: step on axis ${axis} must not be 0`);
    if (typeof d === 'number') {
      // ONNX clamps start and end to [0, d] for positive steps; for negative steps start to [0, d-1], end to [-1, d-1]
      const resolve = (v: number) => (v < 0 ? v + d : v);
      const s = step > 0 ? Math.min(Math.max(resolve(starts[i]), 0), d) : Math.min(Math.max(resolve(starts[i]), 0), d - 1);
      const e = step > 0 ? Math.min(Math.max(resolve(ends[i]), 0), d) : Math.min(Math.max(resolve(ends[i]), -1), d - 1);
      shape[a] = Math.max(0, Math.ceil((e - s) / step));
    } else {
      shape[a] = ends[i] >= 0 && starts[i] >= 0 && ends[i] < 2 ** 31 ? Math.ceil((ends[i] - starts[i]) / step) : `${d}[${starts[i]}:${ends[i]}]`;
    }
  });
  const inputs = [x, g.int64s(starts), g.int64s(ends), g.int64s(axes)];
  if (steps) inputs.push(g.int64s(steps));
  return g.node1('Slice', inputs, x.dtype, shape);
}

/** Gather `indices` (int64) along `axis`. */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  expectDtype('Gather', indices, ['int64', 'int32']);
  const a = normalizeAxis('Gather', axis, x.rank);
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return x.graph.node1('Gather', [x, indices], x.dtype, shape, { axis: a });
}

/** Constant padding; `pads` as ONNX: [begin_0, ..., begin_n, end_0, ..., end_n]. */
export function pad(x: Tensor, pads: readonly number[], value = 0, mode: 'constant' | 'reflect' | 'edge' = 'constant'): Tensor {
  if (pads.length !== 2 * x.rank) throw new Error(`Pad ${describe(x)}: pads needs ${2 * x.rank} values`);
  const shape = x.shape.map((d, i) => (typeof d === 'number' ? d + pads[i] + pads[i + x.rank] : d));
  const g = x.graph;
  const constVal = mode === 'constant' ? scalarLike(x, value) : null;
  return g.node1('Pad', [x, g.int64s(pads), constVal], x.dtype, shape, { mode });
}

export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  return x.graph.node1('Cast', [x], to, x.shape, { to: ONNX_DTYPE[to] });
}

/** Broadcast x to `dims` (numbers or run-time SymDims). */
export function expand(x: Tensor, dims: readonly DimSpec[]): Tensor {
  const g = x.graph;
  const labels = dims.map((d) => (typeof d === 'number' ? d : d.label));
  const shapeTensor = dims.every((d) => typeof d === 'number')
    ? g.int64s(dims as number[])
    : g.node1('Concat', dims.map((d) => (typeof d === 'number' ? g.int64s([d]) : d.value)), 'int64', [dims.length], { axis: 0 });
  const rank = Math.max(labels.length, x.rank);
  const shape: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const a = x.shape[x.rank - rank + i] ?? 1;
    const b = labels[labels.length - rank + i] ?? 1;
    if (typeof a === 'number' && typeof b === 'number' && a !== 1 && b !== 1 && a !== b) {
      throw new Error(`Expand ${describe(x)} to ${formatShape(labels)}: axis ${i} has size ${a}, cannot become ${b}`);
    }
    shape.push(a === 1 ? b : a);
  }
  return g.node1('Expand', [x, shapeTensor], x.dtype, shape);
}

export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank + axes.length;
  const norm = axes.map((a) => normalizeAxis('Unsqueeze', a, rank)).sort((p, q) => p - q);
  const shape: Dim[] = [...x.shape];
  for (const a of norm) shape.splice(a, 0, 1);
  return x.graph.node1('Unsqueeze', [x, x.graph.int64s(norm)], x.dtype, shape);
}

export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const norm = axes.map((a) => normalizeAxis('Squeeze', a, x.rank));
  for (const a of norm) {
    const d = x.shape[a];
    if (typeof d === 'number' && d !== 1) throw new Error(`Squeeze ${describe(x)}: axis ${a} has size ${d}, not 1`);
  }
  const shape = x.shape.filter((_, i) => !norm.includes(i));
  return x.graph.node1('Squeeze', [x, x.graph.int64s(norm)], x.dtype, shape);
}

/** [start, start + delta, ...) below `limit`; int64 or float32 scalars. */
export function range(start: Tensor, limit: Tensor, delta: Tensor, label: Dim): Tensor {
  const dtype = expectSameDtype('Range', start, limit, delta);
  return start.graph.node1('Range', [start, limit, delta], dtype, [label]);
}

export function cumsum(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis('CumSum', axis, x.rank);
  return x.graph.node1('CumSum', [x, x.graph.scalar(a, 'int64')], x.dtype, x.shape);
}

export function flattenLabel(shape: Shape): Dim {
  return shape.reduce<Dim>((p, d) => mulDimLabels(p, d), 1);
}
