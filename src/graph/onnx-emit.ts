// Emission of a built Graph as an ONNX ModelProto (protobuf bytes) with the onnx-proto package.

import onnxProto from 'onnx-proto';
import { DType, HostTensor, floatToHalf } from '../io/host-tensor.js';
import { AttrValue, Graph, InitializerSpec, NodeSpec, Tensor } from './graph.js';
import { emittedValue, halfPrecisionNodes } from './half-precision.js';

const { onnx } = onnxProto;

/** Default opset: 23 brings RMSNormalization; ONNX Runtime 1.30 runs 17-24. */
export const DEFAULT_OPSET = 23;
const IR_VERSION = 10;

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  bfloat16: 16,
};

export interface EmitOptions {
  opset?: number;
  /** Graph doc string, e.g. the model and config it was built from. */
  docString?: string;
  /**
   * Standard ONNX ops only, for GPU providers that lack ONNX Runtime's CPU contrib ops: FusedMatMul becomes
   * Transpose + MatMul (+ Mul by alpha). Without this, ORT runs those nodes on its CPU fallback with copies to and
   * from the device around each.
   */
  portableOps?: boolean;
  /** float16 compute outside the graph's float32 islands (half-precision.ts); inputs and outputs stay float32. */
  halfPrecision?: boolean;
}

export function emitModel(graph: Graph, options: EmitOptions = {}): Uint8Array {
  const nodes = liveNodes(graph, options.halfPrecision ? halfPrecisionNodes(graph) : graph.nodes);
  // initializers only live nodes read (ORT warns about each unused one at every session load)
  const read = new Set([...nodes.flatMap((n) => n.inputs), ...graph.outputs.map((t) => t.name)]);
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'sana-ts',
    opsetImport: [
      { domain: '', version: options.opset ?? DEFAULT_OPSET },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: onnx.GraphProto.create({
      name: graph.name,
      docString: options.docString ?? '',
      node: nodes.flatMap((n) =>
        options.portableOps && n.opType === 'FusedMatMul' && n.domain === 'com.microsoft'
          ? lowerFusedMatMul(graph, n)
          : [
              onnx.NodeProto.create({
                opType: n.opType,
                name: n.name,
                input: [...n.inputs],
                output: [...n.outputs],
                domain: n.domain ?? '',
                attribute: Object.entries(n.attributes).map(([name, v]) => attribute(name, v)),
              }),
            ],
      ),
      initializer: graph.initializers.filter((i) => read.has(i.name)).map(initializer),
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
      // half-precision emission renames some values and retypes others (a shape-only op on a float16 value keeps its
      // name), so there the builder's types are not the emitted ones: ORT infers them
      valueInfo: options.halfPrecision ? [] : computedValueInfo(graph, nodes),
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The nodes some graph output depends on, in their order. Builders create size lookups (Shape, Gather) eagerly and
 * constant reshapes leave many unread; ONNX Runtime would still resolve and plan each one at every session load.
 */
function liveNodes(graph: Graph, nodes: readonly NodeSpec[]): NodeSpec[] {
  const needed = new Set(graph.outputs.map((t) => t.name));
  const kept: NodeSpec[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const input of n.inputs) if (input) needed.add(input);
  }
  return kept.reverse();
}

/** alpha * op(A) @ op(B) in standard ops: a Transpose of the last two axes per transposed operand, MatMul, Mul. */
function lowerFusedMatMul(graph: Graph, n: NodeSpec): onnxProto.onnx.INodeProto[] {
  const attrs = n.attributes as { alpha?: { float: number }; transA?: number; transB?: number };
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const operand = (name: string, trans: boolean | undefined, tag: string): string => {
    if (!trans) return name;
    const rank = emittedValue(graph, name).rank;
    const perm = [...Array(rank).keys()];
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    const out = `${n.name}/${tag}_t`;
    nodes.push(onnx.NodeProto.create({ opType: 'Transpose', name: out, input: [name], output: [out], attribute: [attribute('perm', perm)] }));
    return out;
  };
  const a = operand(n.inputs[0], attrs.transA === 1, 'a');
  const b = operand(n.inputs[1], attrs.transB === 1, 'b');
  const alpha = attrs.alpha?.float ?? 1;
  const product = alpha === 1 ? n.outputs[0] : `${n.name}/matmul`;
  nodes.push(onnx.NodeProto.create({ opType: 'MatMul', name: `${n.name}/matmul`, input: [a, b], output: [product] }));
  if (alpha !== 1) {
    const dtype = emittedValue(graph, n.outputs[0]).dtype;
    const scale = `${n.name}/alpha`;
    nodes.push(
      onnx.NodeProto.create({
        opType: 'Constant',
        name: scale,
        output: [scale],
        attribute: [attribute('value', new HostTensor(dtype, [], dtype === 'float16' ? Uint16Array.of(floatToHalf(alpha)) : Float32Array.of(alpha)))],
      }),
      onnx.NodeProto.create({ opType: 'Mul', name: `${n.name}/scale`, input: [product, scale], output: [n.outputs[0]] }),
    );
  }
  return nodes;
}

function valueInfo(t: Tensor): onnxProto.onnx.IValueInfoProto {
  return typedValue(t.name, t.dtype, t.shape);
}

function typedValue(name: string, dtype: DType, shape: Tensor['shape']): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/**
 * The type and shape of every value the nodes compute, as the builder knows them (run-time sizes as the builder's
 * labels, "B", "H*W", ...). ONNX Runtime's own inference loses sizes after a Reshape to a target computed at run
 * time, and its allocation planner reuses a freed buffer only for a value of known shape; it scans its list of freed
 * buffers for every output it plans, so without these that list grows with the graph and session creation with it,
 * faster than linearly. bench/graph-size-load.js on a 2-core EPYC (unpacked, warm cache): 28 blocks 0.85 -> 0.19 s,
 * 56 blocks 3.7-5.9 -> 0.42 s; Sana-600M's whole transformer load 1.05-1.35 -> 0.37-0.40 s unpacked. ORT checks a
 * reused buffer's size at run time and fails (never writes past it) when it is too small, so a wrong label would
 * show as an error, not a wrong image. Names only the emitter makes (lowered FusedMatMul parts) are left to ORT.
 */
function computedValueInfo(graph: Graph, nodes: readonly NodeSpec[]): onnxProto.onnx.IValueInfoProto[] {
  const declared = new Set([...graph.inputs, ...graph.outputs].map((t) => t.name));
  const out: onnxProto.onnx.IValueInfoProto[] = [];
  for (const n of nodes) {
    for (const name of n.outputs) {
      const t = name && !declared.has(name) ? graph.find(name) : undefined;
      if (t) out.push(typedValue(name, t.dtype, t.shape));
    }
  }
  return out;
}

function tensorProto(name: string, value: HostTensor): onnxProto.onnx.ITensorProto {
  const d = value.data;
  return {
    name,
    dataType: ONNX_DTYPE[value.dtype],
    dims: [...value.shape],
    rawData: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
  };
}

function initializer(init: InitializerSpec): onnxProto.onnx.ITensorProto {
  if (init.data) return tensorProto(init.name, init.data);
  const ext = init.external!;
  return {
    name: init.name,
    dataType: ONNX_DTYPE[init.dtype],
    dims: [...init.shape],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: ext.location },
      { key: 'offset', value: String(ext.offset) },
      { key: 'length', value: String(ext.length) },
    ],
  };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use { float: ${v} } for a float attribute`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (v instanceof HostTensor) return { name, type: T.TENSOR, t: tensorProto(name, v) };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) {
      return { name, type: T.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) };
    }
    return { name, type: T.INTS, ints: v as number[] };
  }
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.FLOATS, floats: v.floats };
}
