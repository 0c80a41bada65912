// DC-AE up/down-sampling blocks of every type against diffusers' definitions evaluated naively in plain loops:
// 3x3 conv (zero padding), nearest x2, repeat_interleave, pixel (un)shuffle, group mean. The fixture covers only
// "interpolate"/"conv"; these cover "pixel_shuffle"/"pixel_unshuffle" too, with and without shortcut.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { Graph } from '../src/graph/graph.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { downBlock, upBlock } from '../src/models/dcae/blocks.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { assertClose } from './helpers/compare.js';

interface Map4 {
  c: number;
  h: number;
  w: number;
  d: Float64Array;
}
const map = (c: number, h: number, w: number, f: (i: number) => number = () => 0): Map4 => ({ c, h, w, d: Float64Array.from({ length: c * h * w }, (_, i) => f(i)) });
const get = (m: Map4, c: number, y: number, x: number) => (y < 0 || x < 0 || y >= m.h || x >= m.w ? 0 : m.d[(c * m.h + y) * m.w + x]);

function conv3x3(x: Map4, weight: Float32Array, bias: Float32Array, out: number, stride: number): Map4 {
  const h = Math.floor((x.h - 1) / stride) + 1;
  const w = Math.floor((x.w - 1) / stride) + 1;
  const y = map(out, h, w);
  for (let o = 0; o < out; o++)
    for (let r = 0; r < h; r++)
      for (let s = 0; s < w; s++) {
        let acc = bias[o];
        for (let c = 0; c < x.c; c++)
          for (let a = 0; a < 3; a++)
            for (let b = 0; b < 3; b++) acc += weight[((o * x.c + c) * 3 + a) * 3 + b] * get(x, c, r * stride + a - 1, s * stride + b - 1);
        y.d[(o * h + r) * w + s] = acc;
      }
  return y;
}
const nearest2 = (x: Map4) => map(x.c, 2 * x.h, 2 * x.w, (i) => {
  const c = Math.floor(i / (4 * x.h * x.w));
  const y = Math.floor(i / (2 * x.w)) % (2 * x.h);
  return get(x, c, y >> 1, (i % (2 * x.w)) >> 1);
});
const repeatInterleave = (x: Map4, r: number) => map(x.c * r, x.h, x.w, (i) => x.d[(Math.floor(Math.floor(i / (x.h * x.w)) / r) * x.h * x.w) + (i % (x.h * x.w))]);
/** out[c, 2y+i, 2x+j] = in[4c + 2i + j, y, x] */
const pixelShuffle = (x: Map4) => map(x.c / 4, 2 * x.h, 2 * x.w, (k) => {
  const W = 2 * x.w;
  const H = 2 * x.h;
  const c = Math.floor(k / (H * W));
  const Y = Math.floor(k / W) % H;
  const X = k % W;
  return get(x, 4 * c + 2 * (Y % 2) + (X % 2), Y >> 1, X >> 1);
});
/** out[4c + 2i + j, y, x] = in[c, 2y+i, 2x+j] */
const pixelUnshuffle = (x: Map4) => map(4 * x.c, x.h / 2, x.w / 2, (k) => {
  const h = x.h / 2;
  const w = x.w / 2;
  const ch = Math.floor(k / (h * w));
  const y = Math.floor(k / w) % h;
  const xx = k % w;
  return get(x, ch >> 2, 2 * y + ((ch >> 1) & 1), 2 * xx + (ch & 1));
});
const groupMean = (x: Map4, out: number) => map(out, x.h, x.w, (k) => {
  const g = x.c / out;
  const o = Math.floor(k / (x.h * x.w));
  let s = 0;
  for (let t = 0; t < g; t++) s += x.d[(o * g + t) * x.h * x.w + (k % (x.h * x.w))];
  return s / g;
});
const plus = (a: Map4, b: Map4) => map(a.c, a.h, a.w, (i) => a.d[i] + b.d[i]);

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3 + seed) * 0.5);

describe('DC-AE resampling blocks', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcae-resample-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const [H, W] = [4, 6];

  async function run(
    cin: number,
    convOut: number,
    build: (w: WeightBinder, x: ReturnType<Graph['input']>) => ReturnType<Graph['input']>,
    [mapH, mapW] = [H, W],
  ) {
    const weight = values(convOut * cin * 9, 1);
    const bias = values(convOut, 2);
    const file = path.join(dir, `w${cin}_${convOut}.safetensors`);
    writeSafetensors(file, { 'b.conv.weight': HostTensor.float32([convOut, cin, 3, 3], weight), 'b.conv.bias': HostTensor.float32([convOut], bias) });
    const g = new Graph();
    const w = new WeightBinder(g, WeightStore.open(file));
    g.output(build(w, g.input('x', 'float32', ['B', cin, 'H', 'W'])), 'y');
    w.finish('block');
    const s = await nodeBackend.createSession(compileGraph(g), { threads: 1 });
    const xData = values(cin * mapH * mapW, 3);
    const { y } = await s.run({ x: HostTensor.float32([1, cin, mapH, mapW], xData) });
    await s.release();
    return { y, x: map(cin, mapH, mapW, (i) => xData[i]), weight, bias };
  }

  for (const [cin, cout] of [[8, 8], [8, 4], [4, 4]] as const) {
    for (const shortcut of [true, false]) {
      it(`up "interpolate" ${cin} -> ${cout}${shortcut ? ' with shortcut' : ''}`, async () => {
        const { y, x, weight, bias } = await run(cin, cout, (w, t) => upBlock(w, 'b', t, cout, 'interpolate', shortcut));
        let want = conv3x3(nearest2(x), weight, bias, cout, 1);
        if (shortcut) want = plus(want, pixelShuffle(repeatInterleave(x, (4 * cout) / cin)));
        assert.deepEqual(y.shape, [1, cout, 2 * H, 2 * W]);
        assertClose(y, want.d, { atol: 1e-5, rtol: 1e-5 }, 'up interpolate');
      });
      it(`up "interpolate" as Winograd F(4x4, 3x3) ${cin} -> ${cout}${shortcut ? ' with shortcut' : ''}`, async () => {
        // Winograd F(4x4, 3x3) needs sides that are multiples of 4.
        const { y, x, weight, bias } = await run(cin, cout, (w, t) => upBlock(w, 'b', t, cout, 'interpolate', shortcut, true), [4, 8]);
        let want = conv3x3(nearest2(x), weight, bias, cout, 1);
        if (shortcut) want = plus(want, pixelShuffle(repeatInterleave(x, (4 * cout) / cin)));
        assert.deepEqual(y.shape, [1, cout, 8, 16]);
        assertClose(y, want.d, { atol: 1e-4, rel_l2: 5e-6 }, 'up interpolate (Winograd)');
      });
      it(`up "pixel_shuffle" ${cin} -> ${cout}${shortcut ? ' with shortcut' : ''}`, async () => {
        const { y, x, weight, bias } = await run(cin, 4 * cout, (w, t) => upBlock(w, 'b', t, cout, 'pixel_shuffle', shortcut));
        let want = pixelShuffle(conv3x3(x, weight, bias, 4 * cout, 1));
        if (shortcut) want = plus(want, pixelShuffle(repeatInterleave(x, (4 * cout) / cin)));
        assertClose(y, want.d, { atol: 1e-5, rtol: 1e-5 }, 'up pixel_shuffle');
      });
    }
  }

  for (const [cin, cout] of [[4, 8], [4, 4], [8, 16]] as const) {
    for (const shortcut of [true, false]) {
      it(`down "conv" ${cin} -> ${cout}${shortcut ? ' with shortcut' : ''}`, async () => {
        const { y, x, weight, bias } = await run(cin, cout, (w, t) => downBlock(w, 'b', t, cout, 'conv', shortcut));
        let want = conv3x3(x, weight, bias, cout, 2);
        if (shortcut) want = plus(want, groupMean(pixelUnshuffle(x), cout));
        assert.deepEqual(y.shape, [1, cout, H / 2, W / 2]);
        assertClose(y, want.d, { atol: 1e-5, rtol: 1e-5 }, 'down conv');
      });
      it(`down "pixel_unshuffle" ${cin} -> ${cout}${shortcut ? ' with shortcut' : ''}`, async () => {
        const { y, x, weight, bias } = await run(cin, cout / 4 || 1, (w, t) => downBlock(w, 'b', t, cout, 'pixel_unshuffle', shortcut));
        let want = pixelUnshuffle(conv3x3(x, weight, bias, cout / 4, 1));
        if (shortcut) want = plus(want, groupMean(pixelUnshuffle(x), cout));
        assertClose(y, want.d, { atol: 1e-5, rtol: 1e-5 }, 'down pixel_unshuffle');
      });
    }
  }
});
