// A compiled graph whose weights live in a safetensors file (bound as ONNX external data by WeightBinder, with
// bf16 and fp16 weights cast in-graph) runs through onnxruntime-node AND onnxruntime-web (wasm, in Node) with the
// same numbers, matching a plain-loop reference.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { HostTensor, floatToHalf } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { webBackend } from '../src/runtime/web-backend.js';
import { CompiledModel } from '../src/runtime/backend.js';
import { assertClose } from './helpers/compare.js';
import { Rng } from './helpers/random.js';

const IN = 8;
const HID = 6;
const OUT = 5;

describe('external weights through both ONNX Runtime flavours', () => {
  const rng = new Rng(50);
  let dir: string;
  let model: CompiledModel;
  // the exact values the file holds, as plain numbers
  const w1 = rng.floats(HID * IN);
  const b1 = rng.floats(HID);
  // bf16: the top 16 bits of a float32, so the stored value is that float32 with its low 16 bits cleared
  const w2Bits = new Uint16Array(OUT * HID);
  const w2 = new Float32Array(OUT * HID);
  // fp16: multiples of 1/256 in [-2, 2] are exact in fp16
  const b2 = new Float32Array(OUT);
  const b2Bits = new Uint16Array(OUT);
  const x = rng.tensor([2, 3, IN]);

  before(() => {
    const bits = new Uint32Array(rng.floats(OUT * HID).buffer);
    for (let i = 0; i < bits.length; i++) {
      w2Bits[i] = bits[i] >>> 16;
      w2[i] = new Float32Array(Uint32Array.of((bits[i] >>> 16) << 16).buffer)[0];
    }
    for (let i = 0; i < OUT; i++) {
      b2[i] = rng.int(-512, 513) / 256;
      b2Bits[i] = floatToHalf(b2[i]);
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-ext-'));
    const file = path.join(dir, 'model.safetensors');
    writeSafetensors(file, {
      'fc1.weight': HostTensor.float32([HID, IN], w1),
      'fc1.bias': HostTensor.float32([HID], b1),
      'fc2.weight': new HostTensor('bfloat16', [OUT, HID], w2Bits),
      'fc2.bias': new HostTensor('float16', [OUT], b2Bits),
    });
    const g = new Graph();
    const store = WeightStore.open(file);
    const wb = new WeightBinder(g, store);
    const xin = g.input('x', 'float32', ['B', 'N', IN]);
    const h = G.silu(G.linear(xin, wb.get('fc1.weight', [HID, IN]), wb.get('fc1.bias', [HID]))); // [B, N, HID]
    const y = G.linear(h, wb.get('fc2.weight', [OUT, HID]), wb.get('fc2.bias', [OUT])); // [B, N, OUT]
    wb.finish('external-weights test model');
    g.output(y, 'y');
    assert.equal(g.initializers.filter((i) => i.external).length, 4, 'all four weights are external data');
    assert.equal(wb.fileDtype('fc2.weight'), 'bfloat16');
    model = compileGraph(g);
    assert.deepEqual(model.externalFiles, ['model.safetensors']);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function reference(): Float64Array {
    const rows = x.size / IN;
    const out = new Float64Array(rows * OUT);
    for (let r = 0; r < rows; r++) {
      const h = new Float64Array(HID);
      for (let j = 0; j < HID; j++) {
        let s = b1[j];
        for (let i = 0; i < IN; i++) s += x.data[r * IN + i] * w1[j * IN + i];
        h[j] = s / (1 + Math.exp(-s));
      }
      for (let o = 0; o < OUT; o++) {
        let s = b2[o];
        for (let j = 0; j < HID; j++) s += h[j] * w2[o * HID + j];
        out[r * OUT + o] = s;
      }
    }
    return out;
  }

  test('node and web give identical numbers (1e-6) that match the reference', async () => {
    const results: Record<string, HostTensor> = {};
    for (const backend of [nodeBackend, webBackend]) {
      const session = await backend.createSession(model, { threads: 1 });
      try {
        results[backend.name] = (await session.run({ x })).y;
      } finally {
        await session.release();
      }
    }
    const node = results[nodeBackend.name];
    const web = results[webBackend.name];
    assert.deepEqual(node.shape, [2, 3, OUT]);
    assert.deepEqual(web.shape, [2, 3, OUT]);
    assertClose(web, node, { atol: 1e-6, rtol: 1e-6 }, 'web vs node');
    assertClose(node, reference(), { atol: 1e-5, rtol: 1e-5 }, 'node vs reference');
  });

  test('node session options: no prepacking, lazy casts (no constant folding) give the same numbers', async () => {
    const session = await nodeBackend.createSession(model, { threads: 1, prepack: false, noConstantFolding: true });
    try {
      const y = (await session.run({ x })).y;
      assertClose(y, reference(), { atol: 1e-5, rtol: 1e-5 }, 'no prepack, no folding');
    } finally {
      await session.release();
    }
  });
});
