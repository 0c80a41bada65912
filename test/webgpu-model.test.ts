// prepareForWebGpu (src/runtime/webgpu-model.ts): a model with fp16 and bf16 external weights and a Gemm without
// its optional bias, prepared for WebGPU adapters without shader-f16, holds no 16-bit initializer and no trailing
// empty input, and computes the same numbers, bit for bit, as the original through ONNX Runtime's own Cast
// (onnxruntime-web's wasm backend in Node).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { ONNX_DTYPE } from '../src/graph/onnx-emit.js';
import { HostTensor, floatToHalf } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { CompiledModel } from '../src/runtime/backend.js';
import { compileGraph } from '../src/runtime/compile.js';
import { webBackend } from '../src/runtime/web-backend.js';
import { WIDENED_LOCATION, prepareForWebGpu } from '../src/runtime/webgpu-model.js';
import { Rng } from './helpers/random.js';

const { onnx } = onnxProto;
const IN = 8;
const HID = 6;
const OUT = 5;

async function run(model: CompiledModel, x: HostTensor): Promise<HostTensor> {
  const session = await webBackend.createSession(model, { threads: 1 });
  try {
    return (await session.run({ x })).y;
  } finally {
    await session.release();
  }
}

describe('models prepared for WebGPU', () => {
  const rng = new Rng(18);
  let dir: string;
  let model: CompiledModel;
  const x = rng.tensor([2, 3, IN]);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-webgpu-model-'));
    const file = path.join(dir, 'model.safetensors');
    const half = (n: number) => Uint16Array.from(rng.floats(n), (v) => floatToHalf(v));
    const bf16 = (n: number) => Uint16Array.from(new Uint32Array(rng.floats(n).buffer), (b) => b >>> 16);
    writeSafetensors(file, {
      'fc1.weight': new HostTensor('float16', [HID, IN], half(HID * IN)),
      'fc1.bias': HostTensor.float32([HID], rng.floats(HID)),
      'fc2.weight': new HostTensor('bfloat16', [OUT, HID], bf16(OUT * HID)),
    });
    const g = new Graph();
    const wb = new WeightBinder(g, WeightStore.open(file));
    const xin = g.input('x', 'float32', ['B', 'N', IN]);
    const h = G.silu(G.linear(xin, wb.get('fc1.weight', [HID, IN]), wb.get('fc1.bias', [HID]))); // [B, N, HID]
    const y = G.linear(h, wb.get('fc2.weight', [OUT, HID]), null); // [B, N, OUT], no bias
    wb.finish('webgpu-model test model');
    g.output(y, 'y');
    model = compileGraph(g);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the original has what WebGPU without shader-f16 refuses', () => {
    const proto = onnx.ModelProto.decode(model.bytes);
    const types = proto.graph!.initializer!.map((i) => i.dataType);
    assert.ok(types.includes(ONNX_DTYPE.float16) && types.includes(ONNX_DTYPE.bfloat16), `16-bit initializers: ${types}`);
    assert.ok(proto.graph!.node!.some((n) => n.input!.at(-1) === ''), 'a node with a trailing empty input (the bias-free Gemm)');
  });

  test('widened: only float32 initializers, no trailing empty input, the same numbers bit for bit', async () => {
    const read = (location: string) => new Uint8Array(fs.readFileSync(path.join(dir, location)));
    const prepared = prepareForWebGpu(model, read, { widenHalf: true });
    const proto = onnx.ModelProto.decode(prepared.bytes);
    for (const init of proto.graph!.initializer!) {
      assert.ok(init.dataType !== ONNX_DTYPE.float16 && init.dataType !== ONNX_DTYPE.bfloat16, `${init.name} is not 16-bit`);
    }
    assert.equal(proto.graph!.initializer!.filter((i) => i.dataType === ONNX_DTYPE.float32).length, 3, 'the three weights are float32');
    assert.ok(!proto.graph!.node!.some((n) => n.input!.at(-1) === ''), 'no trailing empty input');
    assert.ok(prepared.memoryFiles?.has(WIDENED_LOCATION), 'the widened copies are in memory');
    assert.deepEqual(prepared.externalFiles, ['model.safetensors'], 'the float32 bias still comes from the file');
    const [expected, got] = [await run(model, x), await run(prepared, x)];
    assert.deepEqual(got.shape, [2, 3, OUT]);
    assert.ok(Buffer.from(got.data.buffer).equals(Buffer.from(expected.data.buffer)), 'bit for bit');
  });

  test('without widening, only the inputs change and 16-bit weights stay in the file', async () => {
    const prepared = prepareForWebGpu(model, () => assert.fail('no file is read'), { widenHalf: false });
    const proto = onnx.ModelProto.decode(prepared.bytes);
    assert.ok(proto.graph!.initializer!.some((i) => i.dataType === ONNX_DTYPE.float16));
    assert.ok(!proto.graph!.node!.some((n) => n.input!.at(-1) === ''));
    const [expected, got] = [await run(model, x), await run(prepared, x)];
    assert.ok(Buffer.from(got.data.buffer).equals(Buffer.from(expected.data.buffer)), 'bit for bit');
  });
});
