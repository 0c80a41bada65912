// Emitting a float32 graph for float16 compute, as diffusers runs SANA in fp16: every float32 value a node computes
// becomes float16, except in the nodes built under Graph.keepFloat32 (the reference's fp32 islands, SANA.md §1.9);
// Casts are inserted where a value crosses between the two, once per value. Graph inputs and outputs keep their
// declared float32 type, so the sampler's latents and the guidance maths stay float32 (outputs are cast back before
// guidance, as diffusers does). Norms stay in half precision: ONNX's LayerNormalization and RMSNormalization
// compute their statistics in float32 (stash_type 1), as torch does. float32 weights are cast once, at session
// creation (ONNX Runtime folds a Cast of an initializer); float16 checkpoint weights, which the loader widens with a
// Cast to float32, are used as they are. ref: SANA.md §1.9

import type { Graph, NodeSpec } from './graph.js';

const FLOAT = 1;
const FLOAT16 = 10;
/** Suffix of the float16 form of a float32 value. */
const HALF_SUFFIX = '/f16';

/** Ops that never run in half precision: type converters, constant and index makers, the int8 path. */
const NEVER_HALF = new Set([
  'Cast',
  'Constant',
  'ConstantOfShape',
  'Range',
  'DynamicQuantizeLinear',
  'DynamicQuantizeMatMul',
  'MatMulInteger',
  'QuantizeLinear',
  'DequantizeLinear',
  'MatMulNBits',
]);

/** Ops that read only a tensor's shape: they take whichever form of a value exists. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** Inputs that are float32 whatever the compute type (Resize's roi and scales). */
const FLOAT32_INPUTS: Readonly<Record<string, readonly number[]>> = { Resize: [1, 2] };

/** The graph's nodes rewritten for float16 compute (see the file comment); the graph itself is not changed. */
export function halfPrecisionNodes(graph: Graph): NodeSpec[] {
  const isFloat32 = (name: string) => name !== '' && graph.tensor(name).dtype === 'float32';
  const out: NodeSpec[] = [];
  /** float32 value -> the name of its float16 form, where one exists or is made. */
  const halfForm = new Map<string, string>();
  /** float32 values whose float32 form does not exist (yet): their producer computed them in float16. */
  const halfOnly = new Set<string>();
  const cast = (from: string, to: string, type: number) =>
    out.push({ opType: 'Cast', inputs: [from], outputs: [to], attributes: { to: type }, name: `${to}/cast` });

  const asHalf = (name: string): string => {
    const existing = halfForm.get(name);
    if (existing) return existing;
    const h = name + HALF_SUFFIX;
    cast(name, h, FLOAT16);
    halfForm.set(name, h);
    return h;
  };
  const asFloat = (name: string): string => {
    if (halfOnly.delete(name)) cast(halfForm.get(name)!, name, FLOAT);
    return name;
  };

  for (const n of graph.nodes) {
    // A float16 weight widened for float32 compute: in half precision the weight itself is the value.
    if (n.opType === 'Cast' && n.attributes.to === FLOAT && graph.tensor(n.inputs[0]).dtype === 'float16') {
      halfForm.set(n.outputs[0], n.inputs[0]);
      halfOnly.add(n.outputs[0]);
      continue;
    }
    if (SHAPE_ONLY.has(n.opType)) {
      out.push({ ...n, inputs: n.inputs.map((i) => (halfOnly.has(i) ? halfForm.get(i)! : i)) });
      continue;
    }
    const touchesFloat = n.inputs.some(isFloat32) || n.outputs.some(isFloat32);
    const half = touchesFloat && !NEVER_HALF.has(n.opType) && !graph.float32Nodes.has(n.name);
    if (!half) {
      out.push({ ...n, inputs: n.inputs.map((i) => (isFloat32(i) ? asFloat(i) : i)) });
      continue;
    }
    const keep = FLOAT32_INPUTS[n.opType] ?? [];
    const inputs = n.inputs.map((i, k) => (!isFloat32(i) ? i : keep.includes(k) ? asFloat(i) : asHalf(i)));
    const outputs = n.outputs.map((o) => {
      if (!isFloat32(o)) return o;
      const h = o + HALF_SUFFIX;
      halfForm.set(o, h);
      halfOnly.add(o);
      return h;
    });
    out.push({ ...n, inputs, outputs });
  }
  for (const o of graph.outputs) if (o.dtype === 'float32') asFloat(o.name);
  return out;
}

/** The graph value a (possibly renamed) emitted value stands for, and its emitted dtype. */
export function emittedValue(graph: Graph, name: string): { rank: number; dtype: 'float16' | ReturnType<Graph['tensor']>['dtype'] } {
  if (name.endsWith(HALF_SUFFIX)) return { rank: graph.tensor(name.slice(0, -HALF_SUFFIX.length)).rank, dtype: 'float16' };
  const t = graph.tensor(name);
  return { rank: t.rank, dtype: t.dtype };
}
