// A compiled model made digestible for onnxruntime-web's WebGPU provider, with results unchanged:
// - 16-bit weights widened to float32, for adapters without shader-f16 (SwiftShader, some phones), on which any f16
//   buffer fails, while our graphs keep checkpoint weights in their file dtype and Cast them in the graph
//   (DESIGN.md §1). Widening is exact (every f16/bf16 value is a float32); Cast(float32 -> float32) is an identity.
// - the declared types of computed values dropped when weights are widened (ORT infers them again).
// - trailing empty optional inputs dropped (Gemm's absent C as ""): the ONNX spec makes both spellings the same,
//   but the WebGPU Gemm kernel counts the empty one and refuses "mismatched input types".
// ref: DESIGN.md §1 (store weights as the checkpoint has them; cast in the graph), §6 (no shader-f16 on SwiftShader)

import onnxProto from 'onnx-proto';
import { HostTensor } from '../io/host-tensor.js';
import { ONNX_DTYPE } from '../graph/onnx-emit.js';
import { CompiledModel } from './backend.js';

const { onnx } = onnxProto;

/** The location the widened copies are handed to ONNX Runtime under (in memory). */
export const WIDENED_LOCATION = 'widened-float32.bin';

const HALF_TYPES = new Map<number, 'float16' | 'bfloat16'>([
  [ONNX_DTYPE.float16, 'float16'],
  [ONNX_DTYPE.bfloat16, 'bfloat16'],
]);

function widen(dtype: 'float16' | 'bfloat16', bytes: Uint8Array): Uint8Array {
  const aligned = new Uint16Array(bytes.byteLength / 2);
  new Uint8Array(aligned.buffer).set(bytes);
  const f32 = new HostTensor(dtype, [aligned.length], aligned).toFloat32();
  return new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
}

/**
 * The model for WebGPU: trailing empty node inputs dropped, and with `widenHalf` every float16/bfloat16 initializer
 * (external or inline) turned into float32, the copies held in one in-memory external-data file. `readExternal`
 * gives the bytes of an external-data file by its location.
 */
export function prepareForWebGpu(model: CompiledModel, readExternal: (location: string) => Uint8Array, options: { widenHalf: boolean }): CompiledModel {
  const proto = onnx.ModelProto.decode(model.bytes);
  for (const node of proto.graph?.node ?? []) {
    const inputs = node.input ?? [];
    while (inputs.length && inputs[inputs.length - 1] === '') inputs.pop();
  }
  if (!options.widenHalf) return { ...model, bytes: onnx.ModelProto.encode(proto).finish() };
  // the declared types of computed values (onnx-emit.ts) follow the 16-bit weights: ORT infers the widened ones
  if (proto.graph) proto.graph.valueInfo = [];
  const pieces: Uint8Array[] = [];
  let offset = 0;
  const files = new Map<string, Uint8Array>();
  const source = (location: string) => {
    let bytes = files.get(location) ?? model.memoryFiles?.get(location);
    if (!bytes) files.set(location, (bytes = readExternal(location)));
    return bytes;
  };
  for (const init of proto.graph?.initializer ?? []) {
    const half = HALF_TYPES.get(init.dataType ?? 0);
    if (!half) continue;
    let bytes: Uint8Array;
    if (init.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      const entry = (key: string) => init.externalData?.find((e) => e.key === key)?.value ?? undefined;
      const location = entry('location');
      const start = Number(entry('offset') ?? 0);
      const length = Number(entry('length'));
      if (!location || !Number.isFinite(length)) throw new Error(`initializer ${init.name}: external data without location or length`);
      const file = source(location);
      if (start + length > file.byteLength) throw new Error(`initializer ${init.name}: bytes [${start}, ${start + length}) run past ${location} (${file.byteLength} bytes)`);
      bytes = file.subarray(start, start + length);
    } else if (init.rawData?.length) bytes = init.rawData;
    else if (init.int32Data?.length) bytes = new Uint8Array(Uint16Array.from(init.int32Data).buffer); // 16-bit values stored one per int32
    else throw new Error(`initializer ${init.name}: ${half} without data`);
    const wide = widen(half, bytes);
    init.dataType = ONNX_DTYPE.float32;
    init.rawData = null;
    init.int32Data = [];
    init.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    init.externalData = [
      { key: 'location', value: WIDENED_LOCATION },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(wide.byteLength) },
    ];
    pieces.push(wide);
    offset += wide.byteLength;
  }
  if (!pieces.length) return { ...model, bytes: onnx.ModelProto.encode(proto).finish() };
  const widened = new Uint8Array(offset);
  let at = 0;
  for (const p of pieces) {
    widened.set(p, at);
    at += p.byteLength;
  }
  // files still referenced by float32 initializers stay external; the rest is no longer needed
  const stillUsed = new Set(
    (proto.graph?.initializer ?? []).flatMap((i) => (i.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL ? [i.externalData?.find((e) => e.key === 'location')?.value ?? ''] : [])),
  );
  const memoryFiles = new Map([...(model.memoryFiles ?? [])].filter(([k]) => stillUsed.has(k)));
  memoryFiles.set(WIDENED_LOCATION, widened);
  return {
    ...model,
    bytes: onnx.ModelProto.encode(proto).finish(),
    externalFiles: model.externalFiles.filter((f) => stillUsed.has(f)),
    memoryFiles,
  };
}
