// The ReLU linear-attention kernel against hand-derived values:
// out[:, i] = sum_j v[:, j] (k_j . q_i) / (sum_j k_j . q_i + eps), with q, k through ReLU.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { reluLinearAttention } from '../src/nn/linear-attention.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';

async function run(q: HostTensor, k: HostTensor, v: HostTensor, eps?: number): Promise<Float32Array> {
  const g = new Graph();
  const [tq, tk, tv] = [
    g.input('q', 'float32', ['B', 'H', q.shape[2], 'N']),
    g.input('k', 'float32', ['B', 'H', k.shape[2], 'N']),
    g.input('v', 'float32', ['B', 'H', v.shape[2], 'N']),
  ];
  g.output(reluLinearAttention(tq, tk, tv, { eps }), 'out');
  const s = await nodeBackend.createSession(compileGraph(g), { threads: 1 });
  try {
    return (await s.run({ q, k, v })).out.toFloat32();
  } finally {
    await s.release();
  }
}

describe('reluLinearAttention', () => {
  it('computes the normalised ReLU-kernel average of the values', async () => {
    // one head, d = 2, N = 3 tokens; layout [B, H, d, N]
    const q = HostTensor.float32([1, 1, 2, 3], [1, 0, -1, 0, 2, -3]); // q_0 = (1, 0), q_1 = (0, 2), q_2 = relu(-1, -3) = 0
    const k = HostTensor.float32([1, 1, 2, 3], [1, 2, -5, 1, 0, 4]); // k_0 = (1, 1), k_1 = (2, 0), k_2 = relu(-5, 4) = (0, 4)
    const v = HostTensor.float32([1, 1, 1, 3], [10, 20, 30]);
    const out = await run(q, k, v);
    // token 0: k.q = (1, 2, 0) -> (10 + 40) / 3; token 1: k.q = (2, 0, 8) -> (20 + 240) / 10; token 2: 0 / eps = 0
    assert.deepEqual(Array.from(out, (x) => Math.round(x * 1e5) / 1e5), [Math.round((50 / 3) * 1e5) / 1e5, 26, 0]);
  });

  it('keeps heads and batch rows apart', async () => {
    // B = 2, H = 2, d = 1, N = 2: every (row, head) has its own normalisation
    const q = HostTensor.float32([2, 2, 1, 2], [1, 1, 2, 2, 1, 3, 1, 1]);
    const k = HostTensor.float32([2, 2, 1, 2], [1, 3, 1, 1, 2, 2, 0, 5]);
    const v = HostTensor.float32([2, 2, 1, 2], [4, 8, 1, 3, 5, 7, 9, 11]);
    const out = await run(q, k, v);
    // with d = 1 the q factor cancels: out = sum_j v_j k_j / sum_j k_j per (row, head)
    const expected = [(4 + 24) / 4, (4 + 24) / 4, (1 + 3) / 2, (1 + 3) / 2, (10 + 14) / 4, (10 + 14) / 4, 55 / 5, 55 / 5];
    out.forEach((x, i) => assert.ok(Math.abs(x - expected[i]) < 1e-5, `element ${i}: ${x} vs ${expected[i]}`));
  });
});
