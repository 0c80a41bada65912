// Convolutions and resampling against plain loops: dense, grouped, depthwise, strided and dilated conv2d on odd
// sizes; nearest upsampling; pixel (un)shuffle with the index formulas of SANA.md §3.2.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { assertClose } from './helpers/compare.js';
import { Rng } from './helpers/random.js';
import { elementCountOf, ravel } from './helpers/reference.js';
import { runGraph, runGraphMany } from './helpers/run-graph.js';

const TOL = { atol: 1e-5, rtol: 1e-5 };
const EXACT = { atol: 0, rtol: 0 };

interface ConvCase {
  name: string;
  x: number[];
  outC: number;
  k: number;
  stride: number | [number, number];
  padding: number;
  groups: number;
  dilation: number;
  bias: boolean;
}

/** PyTorch conv2d: out[b,o,y,x] = bias[o] + sum over the group's channels and the kernel window (zero padding). */
function conv2dRef(x: HostTensor, w: HostTensor, bias: HostTensor | null, c: ConvCase): { shape: number[]; data: Float64Array } {
  const [B, C, H, W] = x.shape;
  const inPerGroup = C / c.groups;
  const outPerGroup = c.outC / c.groups;
  const span = c.dilation * (c.k - 1) + 1;
  const [strideH, strideW] = typeof c.stride === 'number' ? [c.stride, c.stride] : c.stride;
  const Ho = Math.floor((H + 2 * c.padding - span) / strideH) + 1;
  const Wo = Math.floor((W + 2 * c.padding - span) / strideW) + 1;
  const shape = [B, c.outC, Ho, Wo];
  const out = new Float64Array(elementCountOf(shape));
  for (let b = 0; b < B; b++)
    for (let o = 0; o < c.outC; o++) {
      const group = Math.floor(o / outPerGroup);
      for (let y = 0; y < Ho; y++)
        for (let xo = 0; xo < Wo; xo++) {
          let s = bias ? bias.data[o] as number : 0;
          for (let ci = 0; ci < inPerGroup; ci++)
            for (let ky = 0; ky < c.k; ky++)
              for (let kx = 0; kx < c.k; kx++) {
                const iy = y * strideH - c.padding + ky * c.dilation;
                const ix = xo * strideW - c.padding + kx * c.dilation;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += (x.data[ravel([b, group * inPerGroup + ci, iy, ix], x.shape)] as number) *
                  (w.data[ravel([o, ci, ky, kx], w.shape)] as number);
              }
          out[ravel([b, o, y, xo], shape)] = s;
        }
    }
  return { shape, data: out };
}

describe('conv2d', () => {
  const rng = new Rng(30);
  const cases: ConvCase[] = [
    { name: 'dense 3x3, 7x5 input, stride 2, padding 1', x: [2, 3, 7, 5], outC: 4, k: 3, stride: 2, padding: 1, groups: 1, dilation: 1, bias: true },
    { name: 'grouped (groups 2) 3x3, stride 1, padding 1', x: [1, 4, 5, 7], outC: 6, k: 3, stride: 1, padding: 1, groups: 2, dilation: 1, bias: true },
    { name: 'depthwise 5x5, padding 2', x: [1, 3, 7, 5], outC: 3, k: 5, stride: 1, padding: 2, groups: 3, dilation: 1, bias: false },
    { name: 'depthwise 3x3, stride 2, no padding', x: [2, 4, 7, 6], outC: 4, k: 3, stride: 2, padding: 0, groups: 4, dilation: 1, bias: true },
    { name: 'grouped 1x1 (groups 3), no bias', x: [1, 6, 3, 5], outC: 9, k: 1, stride: 1, padding: 0, groups: 3, dilation: 1, bias: false },
    { name: 'dilation 2, padding 2', x: [1, 2, 7, 5], outC: 3, k: 3, stride: 1, padding: 2, groups: 1, dilation: 2, bias: true },
    { name: 'per-axis stride [2, 1], depthwise', x: [1, 3, 7, 6], outC: 3, k: 3, stride: [2, 1], padding: 1, groups: 3, dilation: 1, bias: true },
    { name: 'per-axis stride [1, 3], dense', x: [2, 2, 5, 8], outC: 2, k: 3, stride: [1, 3], padding: 1, groups: 1, dilation: 1, bias: false },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const x = rng.tensor(c.x);
      const w = rng.tensor([c.outC, c.x[1] / c.groups, c.k, c.k]);
      const bias = c.bias ? rng.tensor([c.outC]) : null;
      const g = new Graph();
      const y = G.conv2d(g.input('x', 'float32', c.x), g.constant(w, 'w'), bias ? g.constant(bias, 'b') : null, c);
      g.output(y, 'y');
      const ref = conv2dRef(x, w, bias, c);
      assert.deepEqual(y.shape, ref.shape, 'build-time shape');
      const out = (await runGraph(g, { x })).y;
      assert.deepEqual(out.shape, ref.shape);
      assertClose(out, ref.data, TOL, c.name);
    });
  }

  test('symbolic H and W: one graph, stride 2, at two sizes', async () => {
    const c: ConvCase = { name: 'sym', x: [], outC: 2, k: 3, stride: 2, padding: 1, groups: 1, dilation: 1, bias: true };
    const w = rng.tensor([2, 3, 3, 3]);
    const bias = rng.tensor([2]);
    const g = new Graph();
    g.output(G.conv2d(g.input('x', 'float32', ['B', 3, 'H', 'W']), g.constant(w, 'w'), g.constant(bias, 'b'), c), 'y');
    const feeds = [{ x: rng.tensor([1, 3, 7, 5]) }, { x: rng.tensor([2, 3, 4, 9]) }];
    const outs = await runGraphMany(g, feeds);
    feeds.forEach((f, i) => {
      const ref = conv2dRef(f.x, w, bias, c);
      assert.deepEqual(outs[i].y.shape, ref.shape);
      assertClose(outs[i].y, ref.data, TOL, `size ${f.x.shape.join('x')}`);
    });
  });

  test('channel mismatch and bad groups are build-time errors naming Conv and the shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [1, 4, 8, 8]);
    const w = g.input('w', 'float32', [6, 3, 3, 3]);
    assert.throws(() => G.conv2d(x, w, null), /Conv: input x float32\[1, 4, 8, 8\] has 4 channels; weight w float32\[6, 3, 3, 3\] with groups=1 expects 3/);
    const w2 = g.input('w2', 'float32', [6, 1, 3, 3]);
    assert.throws(() => G.conv2d(x, w2, null, { groups: 4 }), /Conv: 6 output channels are not divisible by groups=4/);
    assert.throws(() => G.conv2d(g.input('x3', 'float32', [1, 4, 8]), w, null), /Conv: x3 float32\[1, 4, 8\] has rank 3, expected rank 4/);
    const b = g.input('b', 'float32', [5]);
    assert.throws(() => G.conv2d(g.input('x4', 'float32', [1, 3, 8, 8]), w, b), /Conv: bias b float32\[5\] must be \[6\]/);
  });
});

describe('resampling', () => {
  const rng = new Rng(31);

  test('upsampleNearest x2 on a 3x5 map: out[y, x] = in[floor(y/2), floor(x/2)]', async () => {
    const x = rng.tensor([1, 2, 3, 5]);
    const g = new Graph();
    const y = g.output(G.upsampleNearest(g.input('x', 'float32', x.shape), 2), 'y');
    assert.deepEqual(y.shape, [1, 2, 6, 10]);
    const out = (await runGraph(g, { x })).y;
    const ref: number[] = [];
    for (let c = 0; c < 2; c++) for (let yy = 0; yy < 6; yy++) for (let xx = 0; xx < 10; xx++) ref.push(x.data[ravel([0, c, yy >> 1, xx >> 1], x.shape)]);
    assert.deepEqual(out.shape, [1, 2, 6, 10]);
    assertClose(out, ref, EXACT, 'upsample');
  });

  for (const r of [2, 3]) {
    test(`pixelShuffle r=${r}: out[c, r*y+i, r*x+j] = in[c*r*r + i*r + j, y, x]`, async () => {
      const [B, C, H, W] = [2, 2 * r * r, 3, 2];
      const x = rng.tensor([B, C, H, W]);
      const g = new Graph();
      const y = g.output(G.pixelShuffle(g.input('x', 'float32', x.shape), r), 'y');
      const outShape = [B, C / (r * r), H * r, W * r];
      assert.deepEqual(y.shape, outShape);
      const out = (await runGraph(g, { x })).y;
      const ref = new Float32Array(elementCountOf(outShape));
      for (let b = 0; b < B; b++)
        for (let c = 0; c < C / (r * r); c++)
          for (let yy = 0; yy < H; yy++)
            for (let xx = 0; xx < W; xx++)
              for (let i = 0; i < r; i++)
                for (let j = 0; j < r; j++)
                  ref[ravel([b, c, r * yy + i, r * xx + j], outShape)] = x.data[ravel([b, c * r * r + i * r + j, yy, xx], x.shape)];
      assert.deepEqual(out.shape, outShape);
      assertClose(out, ref, EXACT, 'pixelShuffle');
    });
  }

  test('pixelUnshuffle r=2 with symbolic H, W: out[c*4 + i*2 + j, y, x] = in[c, 2y+i, 2x+j]', async () => {
    const r = 2;
    const g = new Graph();
    const y = g.output(G.pixelUnshuffle(g.input('x', 'float32', ['B', 3, 'H', 'W']), r), 'y');
    assert.deepEqual(y.shape, ['B', 12, 'H/2', 'W/2']);
    const feeds = [{ x: rng.tensor([1, 3, 4, 6]) }, { x: rng.tensor([2, 3, 6, 2]) }];
    const outs = await runGraphMany(g, feeds);
    feeds.forEach(({ x }, k) => {
      const [B, C, H, W] = x.shape;
      const outShape = [B, C * r * r, H / r, W / r];
      const ref = new Float32Array(elementCountOf(outShape));
      for (let b = 0; b < B; b++)
        for (let c = 0; c < C; c++)
          for (let i = 0; i < r; i++)
            for (let j = 0; j < r; j++)
              for (let yy = 0; yy < H / r; yy++)
                for (let xx = 0; xx < W / r; xx++)
                  ref[ravel([b, c * r * r + i * r + j, yy, xx], outShape)] = x.data[ravel([b, c, r * yy + i, r * xx + j], x.shape)];
      assert.deepEqual(outs[k].y.shape, outShape);
      assertClose(outs[k].y, ref, EXACT, `pixelUnshuffle ${x.shape.join('x')}`);
    });
  });

  test('pixelUnshuffle then pixelShuffle is the identity (static 4x6 map, r=2)', async () => {
    const x = rng.tensor([1, 2, 4, 6]);
    const g = new Graph();
    g.output(G.pixelShuffle(G.pixelUnshuffle(g.input('x', 'float32', x.shape), 2), 2), 'y');
    const out = (await runGraph(g, { x })).y;
    assertClose(out, x.data, EXACT, 'round trip');
  });

  test('pixelShuffle rejects channel counts not divisible by r*r', () => {
    const g = new Graph();
    assert.throws(() => G.pixelShuffle(g.input('x', 'float32', [1, 6, 2, 2]), 2), /pixelShuffle: x float32\[1, 6, 2, 2\] channels not divisible by 4/);
  });
});
