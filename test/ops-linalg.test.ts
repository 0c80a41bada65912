// Matrix products against plain triple loops: MatMul batch broadcasting, Gemm with transposes/alpha/beta/bias,
// linear (PyTorch [out, in] weight) on rank-2/3 inputs with symbolic leading dims, Einsum.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { assertClose } from './helpers/compare.js';
import { Rng } from './helpers/random.js';
import { broadcastShape, broadcastSource, elementCountOf, ravel, unravel } from './helpers/reference.js';
import { runGraph, runGraphMany } from './helpers/run-graph.js';

const TOL = { atol: 1e-5, rtol: 1e-5 };

/** Batched matmul reference with NumPy broadcasting of the batch dims (both inputs rank >= 2). */
function matmulRef(a: HostTensor, b: HostTensor): { shape: number[]; data: Float64Array } {
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...batch, m, n];
  const out = new Float64Array(elementCountOf(shape));
  const A = a.data as Float32Array;
  const B = b.data as Float32Array;
  for (let bi = 0; bi < elementCountOf(batch); bi++) {
    const idx = unravel(bi, batch);
    const aOff = broadcastSource(idx, a.shape.slice(0, -2)) * m * k;
    const bOff = broadcastSource(idx, b.shape.slice(0, -2)) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += A[aOff + i * k + p] * B[bOff + p * n + j];
        out[bi * m * n + i * n + j] = s;
      }
  }
  return { shape, data: out };
}

describe('matmul', () => {
  const rng = new Rng(20);

  test('batch broadcasting [2,1,3,4] x [5,4,6] -> [2,5,3,6]', async () => {
    const a = rng.tensor([2, 1, 3, 4]);
    const b = rng.tensor([5, 4, 6]);
    const g = new Graph();
    const y = g.output(G.matmul(g.input('a', 'float32', a.shape), g.input('b', 'float32', b.shape)), 'y');
    assert.deepEqual(y.shape, [2, 5, 3, 6]);
    const out = (await runGraph(g, { a, b })).y;
    const ref = matmulRef(a, b);
    assert.deepEqual(out.shape, ref.shape);
    assertClose(out, ref.data, TOL, 'batched matmul');
  });

  test('rank-1 operands: vector x matrix and matrix x vector', async () => {
    const v = rng.tensor([4]);
    const m = rng.tensor([4, 3]);
    const w = rng.tensor([3]);
    const g = new Graph();
    const tv = g.input('v', 'float32', [4]);
    const tm = g.input('m', 'float32', [4, 3]);
    const tw = g.input('w', 'float32', [3]);
    assert.deepEqual(g.output(G.matmul(tv, tm), 'vm').shape, [3]);
    assert.deepEqual(g.output(G.matmul(tm, tw), 'mw').shape, [4]);
    const out = await runGraph(g, { v, m, w });
    const vm = [0, 1, 2].map((j) => [0, 1, 2, 3].reduce((s, p) => s + v.data[p] * m.data[p * 3 + j], 0));
    const mw = [0, 1, 2, 3].map((i) => [0, 1, 2].reduce((s, p) => s + m.data[i * 3 + p] * w.data[p], 0));
    assertClose(out.vm, vm, TOL, 'v x M');
    assertClose(out.mw, mw, TOL, 'M x w');
  });

  test('mismatched inner dimensions are a build-time error naming the op and shapes', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2, 3, 4]);
    const b = g.input('b', 'float32', [5, 6]);
    assert.throws(() => G.matmul(a, b), /MatMul: inner dimensions differ: a float32\[2, 3, 4\] x b float32\[5, 6\] \(4 vs 5\)/);
    const c = g.input('c', 'float32', [3, 4, 6]);
    assert.throws(() => G.matmul(a, c), /MatMul.*\[2, 3, 4\].*\[3, 4, 6\].*cannot be broadcast/);
  });
});

describe('gemm', () => {
  const rng = new Rng(21);
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`transA=${transA} transB=${transB}, alpha 0.5, beta 2, bias [1,5]`, async () => {
        const [m, k, n] = [3, 4, 5];
        const a = rng.tensor(transA ? [k, m] : [m, k]);
        const b = rng.tensor(transB ? [n, k] : [k, n]);
        const c = rng.tensor([1, n]);
        const g = new Graph();
        const y = G.gemm(g.input('a', 'float32', a.shape), g.input('b', 'float32', b.shape), g.input('c', 'float32', c.shape), {
          transA,
          transB,
          alpha: 0.5,
          beta: 2,
        });
        assert.deepEqual(y.shape, [m, n]);
        g.output(y, 'y');
        const out = (await runGraph(g, { a, b, c })).y;
        const A = (i: number, p: number) => a.data[transA ? p * m + i : i * k + p];
        const B = (p: number, j: number) => b.data[transB ? j * k + p : p * n + j];
        const ref: number[] = [];
        for (let i = 0; i < m; i++)
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) s += A(i, p) * B(p, j);
            ref.push(0.5 * s + 2 * c.data[j]);
          }
        assertClose(out, ref, TOL, 'gemm');
      });
    }
  }

  test('without bias', async () => {
    const a = rng.tensor([2, 3]);
    const b = rng.tensor([3, 2]);
    const g = new Graph();
    g.output(G.gemm(g.input('a', 'float32', [2, 3]), g.input('b', 'float32', [3, 2]), null), 'y');
    const out = (await runGraph(g, { a, b })).y;
    assertClose(out, matmulRef(a, b).data, TOL, 'gemm no bias');
  });

  test('inner dimension mismatch names Gemm and the shapes', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [2, 3]);
    assert.throws(() => G.gemm(a, b, null), /Gemm: inner dimensions differ: a float32\[2, 3\] x b float32\[2, 3\]/);
    assert.throws(() => G.gemm(a, g.input('c', 'float32', [2, 3, 1]), null), /Gemm: needs 2-D inputs/);
  });
});

describe('linear (weight [out, in], y = x W^T + b)', () => {
  const rng = new Rng(22);
  const linearRef = (x: Float32Array, rows: number, w: HostTensor, bias?: HostTensor) => {
    const [outF, inF] = w.shape;
    const ref = new Float64Array(rows * outF);
    for (let r = 0; r < rows; r++)
      for (let o = 0; o < outF; o++) {
        let s = bias ? bias.data[o] as number : 0;
        for (let i = 0; i < inF; i++) s += x[r * inF + i] * (w.data[o * inF + i] as number);
        ref[r * outF + o] = s;
      }
    return ref;
  };

  test('rank-3 input with symbolic leading dims, one graph at two sizes', async () => {
    const w = rng.tensor([6, 4]);
    const bias = rng.tensor([6]);
    const g = new Graph();
    const x = g.input('x', 'float32', ['B', 'N', 4]);
    const y = g.output(G.linear(x, g.constant(w, 'w'), g.constant(bias, 'b')), 'y');
    assert.deepEqual(y.shape, ['B', 'N', 6]);
    const feeds = [{ x: rng.tensor([2, 3, 4]) }, { x: rng.tensor([1, 7, 4]) }];
    const outs = await runGraphMany(g, feeds);
    feeds.forEach((f, k) => {
      const [B, N] = f.x.shape;
      assert.deepEqual(outs[k].y.shape, [B, N, 6]);
      assertClose(outs[k].y, linearRef(f.x.data, B * N, w, bias), TOL, `linear ${B}x${N}`);
    });
  });

  test('rank-2 and static rank-4 inputs, without bias', async () => {
    const w = rng.tensor([3, 5]);
    const x2 = rng.tensor([4, 5]);
    const x4 = rng.tensor([2, 2, 3, 5]);
    const g = new Graph();
    const tw = g.constant(w, 'w');
    g.output(G.linear(g.input('x2', 'float32', [4, 5]), tw), 'y2');
    const y4 = g.output(G.linear(g.input('x4', 'float32', [2, 2, 3, 5]), tw), 'y4');
    assert.deepEqual(y4.shape, [2, 2, 3, 3]);
    const out = await runGraph(g, { x2, x4 });
    assertClose(out.y2, linearRef(x2.data, 4, w), TOL, 'linear rank 2');
    assert.deepEqual(out.y4.shape, [2, 2, 3, 3]);
    assertClose(out.y4, linearRef(x4.data, 12, w), TOL, 'linear rank 4');
  });

  test('feature mismatch names linear, the input and the weight', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['B', 3]);
    const w = g.input('w', 'float32', [6, 4]);
    assert.throws(() => G.linear(x, w), /linear: input x float32\[B, 3\] has 3 features, weight w float32\[6, 4\] expects 4/);
    assert.throws(() => G.linear(g.input('z', 'float32', ['B', 4]), w, g.input('b', 'float32', [5])), /linear: bias b float32\[5\] must be \[6\]/);
  });
});

describe('einsum', () => {
  test('batched bilinear form "bij,bjk->bik" and a transposed contraction "bdn,ben->bde"', async () => {
    const rng = new Rng(23);
    const a = rng.tensor([2, 3, 4]);
    const b = rng.tensor([2, 4, 5]);
    const c = rng.tensor([2, 6, 5]);
    const g = new Graph();
    const ta = g.input('a', 'float32', a.shape);
    const tb = g.input('b', 'float32', b.shape);
    const tc = g.input('c', 'float32', c.shape);
    g.output(G.einsum('bij,bjk->bik', [ta, tb], [2, 3, 5]), 'y');
    g.output(G.einsum('bdn,ben->bde', [tb, tc], [2, 4, 6]), 'z');
    const out = await runGraph(g, { a, b, c });
    assertClose(out.y, matmulRef(a, b).data, TOL, 'einsum matmul');
    const z: number[] = [];
    for (let bi = 0; bi < 2; bi++)
      for (let d = 0; d < 4; d++)
        for (let e = 0; e < 6; e++) {
          let s = 0;
          for (let n = 0; n < 5; n++) s += b.data[ravel([bi, d, n], b.shape)] * c.data[ravel([bi, e, n], c.shape)];
          z.push(s);
        }
    assertClose(out.z, z, TOL, 'einsum n-contraction');
  });
});
