// The ReLU linear attention kernel on random inputs against its defining sum, evaluated directly in plain loops.
// ref: SANA.md §1.5 step 5

import { describe, it } from 'node:test';
import { Graph } from '../src/graph/graph.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { reluLinearAttention } from '../src/nn/linear-attention.js';
import { assertClose } from './helpers/compare.js';

const [B, H, N, D] = [2, 3, 7, 4];
const EPS = 1e-15;

function random(seed: number, n: number, nonNegative: boolean): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    const v = s / 2147483648 - 0.3;
    return nonNegative ? Math.max(v, 0) : v;
  });
}

/** out[b,h,i,:] = sum_j v_j (k_j . q_i) / (sum_j k_j . q_i + eps), tokens-major [B, H, N, D]. */
function expected(q: Float32Array, k: Float32Array, v: Float32Array): Float32Array {
  const out = new Float32Array(q.length);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < N; i++) {
      let den = 0;
      const num = new Float64Array(D);
      for (let j = 0; j < N; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += k[(bh * N + j) * D + d] * q[(bh * N + i) * D + d];
        den += dot;
        for (let d = 0; d < D; d++) num[d] += v[(bh * N + j) * D + d] * dot;
      }
      for (let d = 0; d < D; d++) out[(bh * N + i) * D + d] = num[d] / (den + EPS);
    }
  }
  return out;
}

function toChannelMajor(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let bh = 0; bh < B * H; bh++) for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) out[(bh * D + d) * N + i] = x[(bh * N + i) * D + d];
  return out;
}

describe('linear attention kernel', () => {
  const q = random(1, B * H * N * D, false);
  const k = random(2, B * H * N * D, false);
  const v = random(3, B * H * N * D, false);
  const relu = (x: Float32Array) => x.map((e) => Math.max(e, 0));

  async function run(kernel: 'relu' | 'identity', qIn: Float32Array, kIn: Float32Array): Promise<HostTensor> {
    const g = new Graph();
    const shape = ['B', H, D, 'N'];
    const [tq, tk, tv] = ['q', 'k', 'v'].map((n) => g.input(n, 'float32', shape));
    g.output(reluLinearAttention(tq, tk, tv, { eps: EPS, kernel }), 'out');
    const s = await nodeBackend.createSession(compileGraph(g), { threads: 1 });
    const cm = (x: Float32Array) => HostTensor.float32([B, H, D, N], toChannelMajor(x));
    const { out } = await s.run({ q: cm(qIn), k: cm(kIn), v: cm(v) });
    await s.release();
    return out;
  }

  it('applies ReLU to q and k, then the defining sum (channel-major [B, heads, d, N])', async () => {
    const out = await run('relu', q, k);
    assertClose(out, toChannelMajor(expected(relu(q), relu(k), v)), { atol: 1e-6, rtol: 1e-5 }, 'reluLinearAttention');
  });

  it('identity kernel for callers that applied their own feature map', async () => {
    const out = await run('identity', relu(q), relu(k));
    assertClose(out, toChannelMajor(expected(relu(q), relu(k), v)), { atol: 1e-6, rtol: 1e-5 }, 'identity kernel');
  });
});
