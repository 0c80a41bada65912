// Block quantization for MatMulNBits, checked against hand-derived codes and against ONNX Runtime's own kernel.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../src/graph/graph.js';
import { matMulNBits } from '../src/graph/ops/linalg.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { dequantizeBlockwise, quantizeBlockwise } from '../src/nn/quantize-nbits.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';

test('int8 codes: scale = max|w| / 127, code = round(w / scale) + 128', () => {
  const row = new Float32Array(16);
  row[0] = 1.27; // the largest magnitude -> scale 0.01
  row[1] = -0.5; // -50 steps
  row[2] = 0.004; // rounds to 0 steps
  row[3] = 0.006; // rounds to 1 step
  const q = quantizeBlockwise(HostTensor.float32([1, 16], row), 8, 16);
  assert.ok(Math.abs(q.scales.data[0] - 0.01) < 1e-9);
  assert.deepEqual([...q.codes.data.slice(0, 5)], [255, 78, 128, 129, 128]);
});

test('int4 codes: two per byte, lower index in the low nibble, scale = max|w| / 7', () => {
  const row = new Float32Array(16);
  row[0] = -0.7; // -7 steps of 0.1 -> code 1
  row[1] = 0.3; // +3 -> code 11
  const q = quantizeBlockwise(HostTensor.float32([1, 16], row), 4, 16);
  assert.ok(Math.abs(q.scales.data[0] - 0.1) < 1e-7);
  assert.equal(q.codes.data[0], 1 | (11 << 4));
  assert.equal(q.codes.data[1], 8 | (8 << 4));
  const back = dequantizeBlockwise(q);
  assert.ok(Math.abs(back[0] + 0.7) < 1e-6 && Math.abs(back[1] - 0.3) < 1e-6);
});

test('MatMulNBits with our codes equals x times the dequantized weight', async () => {
  const n = 5;
  const k = 64;
  const w = new Float32Array(n * k);
  for (let i = 0; i < w.length; i++) w[i] = Math.sin(i * 1.7) * (1 + (i % 7));
  const x = Float32Array.from({ length: 2 * k }, (_, i) => Math.cos(i * 0.3));
  for (const bits of [8, 4] as const) {
    const q = quantizeBlockwise(HostTensor.float32([n, k], w), bits, 32);
    const deq = dequantizeBlockwise(q);
    const g = new Graph();
    const a = g.input('x', 'float32', ['M', k]);
    g.output(matMulNBits(a, g.constant(q.codes), g.constant(q.scales), { k, n, bits, blockSize: 32, accuracyLevel: 0 }), 'y');
    const session = await nodeBackend.createSession(compileGraph(g), { threads: 1 });
    const y = (await session.run({ x: HostTensor.float32([2, k], x) })).y.toFloat32();
    for (let m = 0; m < 2; m++) {
      for (let j = 0; j < n; j++) {
        let ref = 0;
        for (let c = 0; c < k; c++) ref += x[m * k + c] * deq[j * k + c];
        assert.ok(Math.abs(y[m * n + j] - ref) < 1e-3 * (1 + Math.abs(ref)), `bits ${bits} y[${m},${j}] = ${y[m * n + j]}, expected ${ref}`);
      }
    }
    await session.release();
  }
});

test('onnxruntime-node copies in-memory weights at session creation (so the loader may drop them)', async () => {
  const k = 32;
  const q = quantizeBlockwise(HostTensor.float32([2, k], Float32Array.from({ length: 2 * k }, (_, i) => (i % 5) - 2)), 8, 32);
  const g = new Graph();
  const a = g.input('x', 'float32', [1, k]);
  g.output(matMulNBits(a, g.inMemory('codes', q.codes), g.inMemory('scales', q.scales), { k, n: 2, bits: 8, blockSize: 32 }), 'y');
  const session = await nodeBackend.createSession(compileGraph(g), { threads: 1 });
  const x = HostTensor.float32([1, k], new Float32Array(k).fill(1));
  const before = (await session.run({ x })).y.toFloat32().slice();
  for (const bytes of g.memoryFiles.values()) bytes.fill(0);
  const after = (await session.run({ x })).y.toFloat32();
  assert.ok(before.some((v) => Math.abs(v) > 1), 'the weights are not all zero');
  assert.deepEqual([...after], [...before]);
  await session.release();
});
