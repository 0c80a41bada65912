// Reductions, softmax and normalisations against plain loops (SANA.md conventions: LayerNorm with biased variance,
// RMSNorm x / sqrt(mean(x^2) + eps) * weight (+ bias), channel RMSNorm per pixel over C).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { assertClose } from './helpers/compare.js';
import { Rng } from './helpers/random.js';
import { elementCountOf, ravel, unravel } from './helpers/reference.js';
import { runGraph } from './helpers/run-graph.js';

const TOL = { atol: 1e-5, rtol: 1e-5 };

/** Reduce `axes` of x with (init, step, finish); returns the keepdims shape and data. */
function reduceRef(
  x: HostTensor,
  axes: number[],
  init: number,
  step: (acc: number, v: number) => number,
  finish: (acc: number, count: number) => number,
): { shape: number[]; data: Float64Array } {
  const shape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const acc = new Float64Array(elementCountOf(shape)).fill(init);
  for (let i = 0; i < x.size; i++) {
    const idx = unravel(i, x.shape).map((v, d) => (axes.includes(d) ? 0 : v));
    const o = ravel(idx, shape);
    acc[o] = step(acc[o], x.data[i] as number);
  }
  const count = axes.reduce((p, a) => p * x.shape[a], 1);
  return { shape, data: acc.map((v) => finish(v, count)) };
}

/** Normalise each row of the last dimension with f(row) -> row. */
function rowsRef(x: HostTensor, f: (row: number[]) => number[]): number[] {
  const d = x.shape[x.shape.length - 1];
  const out: number[] = [];
  for (let r = 0; r < x.size / d; r++) out.push(...f(Array.from(x.data as Float32Array).slice(r * d, (r + 1) * d)));
  return out;
}

describe('reductions', () => {
  const rng = new Rng(40);
  const x = rng.tensor([2, 3, 4]);
  const cases = [
    { name: 'reduceSum', op: G.reduceSum, init: 0, step: (a: number, v: number) => a + v, finish: (a: number) => a },
    { name: 'reduceMean', op: G.reduceMean, init: 0, step: (a: number, v: number) => a + v, finish: (a: number, n: number) => a / n },
    { name: 'reduceMax', op: G.reduceMax, init: -Infinity, step: Math.max, finish: (a: number) => a },
  ];
  for (const c of cases) {
    test(`${c.name} over [1] (keepdims) and [0, 2] (dropped)`, async () => {
      const g = new Graph();
      const t = g.input('x', 'float32', x.shape);
      const k = g.output(c.op(t, [1]), 'k');
      const d = g.output(c.op(t, [0, -1], false), 'd');
      assert.deepEqual(k.shape, [2, 1, 4]);
      assert.deepEqual(d.shape, [3]);
      const out = await runGraph(g, { x });
      const rk = reduceRef(x, [1], c.init, c.step, c.finish);
      const rd = reduceRef(x, [0, 2], c.init, c.step, c.finish);
      assert.deepEqual(out.k.shape, [2, 1, 4]);
      assertClose(out.k, rk.data, TOL, `${c.name} keepdims`);
      assert.deepEqual(out.d.shape, [3]);
      assertClose(out.d, rd.data, TOL, `${c.name} dropped`);
    });
  }
});

describe('softmax', () => {
  test('over the last axis and over axis 1', async () => {
    const rng = new Rng(41);
    const x = rng.tensor([2, 3, 5], -4, 4);
    const g = new Graph();
    const t = g.input('x', 'float32', x.shape);
    g.output(G.softmax(t), 'last');
    g.output(G.softmax(t, 1), 'mid');
    const out = await runGraph(g, { x });
    const softmaxRow = (row: number[]) => {
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const s = e.reduce((p, v) => p + v, 0);
      return e.map((v) => v / s);
    };
    assertClose(out.last, rowsRef(x, softmaxRow), TOL, 'softmax last');
    const mid = new Float64Array(30);
    for (let b = 0; b < 2; b++)
      for (let k = 0; k < 5; k++) {
        const col = [0, 1, 2].map((j) => x.data[ravel([b, j, k], x.shape)]);
        softmaxRow(col).forEach((v, j) => (mid[ravel([b, j, k], x.shape)] = v));
      }
    assertClose(out.mid, mid, TOL, 'softmax axis 1');
  });
});

describe('normalisations', () => {
  const rng = new Rng(42);
  const layerNormRow = (eps: number, w?: Float32Array, b?: Float32Array) => (row: number[]) => {
    const mean = row.reduce((p, v) => p + v, 0) / row.length;
    const variance = row.reduce((p, v) => p + (v - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * (w ? w[i] : 1) + (b ? b[i] : 0));
  };
  const rmsRow = (eps: number, w?: Float32Array) => (row: number[]) => {
    const ms = row.reduce((p, v) => p + v * v, 0) / row.length;
    return row.map((v, i) => (v / Math.sqrt(ms + eps)) * (w ? w[i] : 1));
  };

  test('layerNorm with and without affine parameters', async () => {
    const x = rng.tensor([2, 3, 8], -3, 5);
    const w = rng.tensor([8]);
    const b = rng.tensor([8]);
    const g = new Graph();
    const t = g.input('x', 'float32', ['B', 'N', 8]);
    g.output(G.layerNorm(t, 1e-6), 'plain');
    g.output(G.layerNorm(t, 1e-3, g.constant(w, 'w'), g.constant(b, 'b')), 'affine');
    const out = await runGraph(g, { x });
    assertClose(out.plain, rowsRef(x, layerNormRow(1e-6)), TOL, 'layerNorm');
    assertClose(out.affine, rowsRef(x, layerNormRow(1e-3, w.data, b.data)), TOL, 'layerNorm affine');
  });

  test('rmsNorm with and without weight (eps matters for small rows)', async () => {
    const x = rng.tensor([3, 6], -0.05, 0.05);
    const w = rng.tensor([6]);
    const g = new Graph();
    const t = g.input('x', 'float32', x.shape);
    g.output(G.rmsNorm(t, 1e-3), 'plain');
    g.output(G.rmsNorm(t, 1e-5, g.constant(w, 'w')), 'weighted');
    const out = await runGraph(g, { x });
    assertClose(out.plain, rowsRef(x, rmsRow(1e-3)), TOL, 'rmsNorm');
    assertClose(out.weighted, rowsRef(x, rmsRow(1e-5, w.data)), TOL, 'rmsNorm weighted');
  });

  test('channelRmsNorm over C of an NCHW map, per pixel, with weight and bias', async () => {
    const [B, C, H, W] = [2, 5, 3, 4];
    const x = rng.tensor([B, C, H, W]);
    const w = rng.tensor([C]);
    const b = rng.tensor([C]);
    const g = new Graph();
    const t = g.input('x', 'float32', ['B', C, 'H', 'W']);
    const y = g.output(G.channelRmsNorm(t, 1e-5, g.constant(w, 'w'), g.constant(b, 'b')), 'y');
    assert.deepEqual(y.shape, ['B', C, 'H', 'W']);
    g.output(G.channelRmsNorm(t, 1e-5, g.constant(w, 'w')), 'nobias');
    const out = await runGraph(g, { x });
    const ref = new Float64Array(x.size);
    const refNoBias = new Float64Array(x.size);
    for (let bi = 0; bi < B; bi++)
      for (let yy = 0; yy < H; yy++)
        for (let xx = 0; xx < W; xx++) {
          let ms = 0;
          for (let c = 0; c < C; c++) ms += (x.data[ravel([bi, c, yy, xx], x.shape)] as number) ** 2;
          const inv = 1 / Math.sqrt(ms / C + 1e-5);
          for (let c = 0; c < C; c++) {
            const i = ravel([bi, c, yy, xx], x.shape);
            refNoBias[i] = (x.data[i] as number) * inv * w.data[c];
            ref[i] = refNoBias[i] + b.data[c];
          }
        }
    assertClose(out.y, ref, TOL, 'channelRmsNorm');
    assertClose(out.nobias, refNoBias, TOL, 'channelRmsNorm without bias');
  });

  test('float16 inputs: layerNorm and rmsNorm without affine parameters keep the input dtype', async () => {
    const x = HostTensor.float32([2, 4], [1, 2, 3, 4, -1, 0, 1, 2]);
    const g = new Graph();
    const h = G.cast(g.input('x', 'float32', x.shape), 'float16');
    g.output(G.cast(G.layerNorm(h, 1e-5), 'float32'), 'ln');
    g.output(G.cast(G.rmsNorm(h, 1e-5), 'float32'), 'rms');
    const out = await runGraph(g, { x });
    // fp16 keeps ~3 decimal digits
    assertClose(out.ln, rowsRef(x, layerNormRow(1e-5)), { atol: 2e-3, rtol: 2e-3 }, 'fp16 layerNorm');
    assertClose(out.rms, rowsRef(x, rmsRow(1e-5)), { atol: 2e-3, rtol: 2e-3 }, 'fp16 rmsNorm');
  });

  test('parameter shape mismatch names the op and both tensors', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['B', 8]);
    const w = g.input('w', 'float32', [7]);
    assert.throws(() => G.layerNorm(x, 1e-5, w), /LayerNormalization: weight w float32\[7\] does not match the last dimension of x float32\[B, 8\]/);
    assert.throws(() => G.rmsNorm(x, 1e-5, w), /RMSNormalization: weight w float32\[7\]/);
    const m = g.input('m', 'float32', [1, 4, 2, 2]);
    assert.throws(() => G.channelRmsNorm(m, 1e-5, w), /channelRmsNorm: weight w float32\[7\] does not match the channels of m float32\[1, 4, 2, 2\]/);
    assert.throws(() => G.layerNorm(g.input('s', 'float32', ['B', 'D']), 1e-5), /LayerNormalization: s float32\[B, D\] needs a static last dimension/);
  });
});
