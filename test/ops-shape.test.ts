// Shape ops against plain-loop references: reshape with run-time SymDims (one compiled graph at two sizes),
// transpose, concat, split, slice, gather, pad, expand, cast, unsqueeze/squeeze, range, cumsum.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as G from '../src/graph/index.js';
import { Graph, Tensor } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { assertClose } from './helpers/compare.js';
import { Rng } from './helpers/random.js';
import { elementCountOf, ravel, unravel } from './helpers/reference.js';
import { runGraph, runGraphMany } from './helpers/run-graph.js';

const EXACT = { atol: 0, rtol: 0 };

async function runUnary(build: (x: Tensor) => Tensor, x: HostTensor): Promise<HostTensor> {
  const g = new Graph();
  g.output(build(g.input('x', x.dtype, x.shape)), 'y');
  return (await runGraph(g, { x })).y;
}

function ints(t: HostTensor): number[] {
  return Array.from(t.data as BigInt64Array, Number);
}

describe('reshape', () => {
  const rng = new Rng(10);

  test('static reshape with -1 keeps row-major order', async () => {
    const x = rng.tensor([2, 3, 4]);
    const y = await runUnary((t) => G.reshape(t, [3, -1]), x);
    assert.deepEqual(y.shape, [3, 8]);
    assertClose(y, x.data, EXACT, 'reshape');
  });

  test('SymDims: one compiled graph runs at two input sizes', async () => {
    // [B, C, H, W] -> [B, C/2, 2, H*W] -> transpose -> [B, H*W, 2, C/2]
    const g = new Graph();
    const x = g.input('x', 'float32', ['B', 6, 'H', 'W']);
    const b = G.dimOf(x, 0);
    const hw = G.mulDims(G.dimOf(x, 2), G.dimOf(x, 3));
    const half = G.divDim(G.constDim(g, 6), 2);
    const r = G.reshape(x, [b, half, 2, hw]); // [B, 3, 2, H*W]
    assert.deepEqual(r.shape, ['B', 3, 2, 'H*W']);
    const y = g.output(G.transpose(r, [0, 3, 2, 1]), 'y');
    assert.deepEqual(y.shape, ['B', 'H*W', 2, 3]);
    g.output(G.shapeOf(x), 'shape');
    const sizes: Array<[number, number, number]> = [
      [1, 3, 5],
      [2, 4, 2],
    ];
    const feeds = sizes.map(([B, H, W]) => ({ x: rng.tensor([B, 6, H, W]) }));
    const outs = await runGraphMany(g, feeds);
    sizes.forEach(([B, H, W], k) => {
      const xs = feeds[k].x.data;
      const outShape = [B, H * W, 2, 3];
      const expected = new Float32Array(elementCountOf(outShape));
      for (let bi = 0; bi < B; bi++)
        for (let p = 0; p < H * W; p++)
          for (let j = 0; j < 2; j++)
            for (let c = 0; c < 3; c++) expected[ravel([bi, p, j, c], outShape)] = xs[((bi * 6 + c * 2 + j) * H * W) + p];
      assert.deepEqual(outs[k].y.shape, outShape);
      assertClose(outs[k].y, expected, EXACT, `size ${B}x${H}x${W}`);
      assert.deepEqual(ints(outs[k].shape), [B, 6, H, W]);
    });
  });

  test('divDim of a run-time dimension', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N']);
    const y = g.output(G.reshape(x, [G.divDim(G.dimOf(x, 0), 4), 4]), 'y'); // [N/4, 4]
    assert.deepEqual(y.shape, ['N/4', 4]);
    const xv = rng.tensor([12]);
    const out = (await runGraph(g, { x: xv })).y;
    assert.deepEqual(out.shape, [3, 4]);
    assertClose(out, xv.data, EXACT, 'divDim reshape');
  });

  test('run-time sizes become constant targets where ONNX allows (0 = copy, one -1), and run at every size, empty ones too', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['B', 'N', 8]);
    const heads = G.reshape(x, [G.dimOf(x, 0), G.dimOf(x, 1), 2, 4]); // [B, N, 2, 4]: copies
    const rows = G.reshape(x, [G.mulDims(G.dimOf(x, 0), G.dimOf(x, 1)), 8]); // [B*N, 8]: inferred
    const wide = G.reshape(x, [G.dimOf(x, 0), G.mulDims(G.dimOf(x, 1), 8)]); // [B, N*8]: a copy and a run-time size
    const back = G.reshape(rows, [G.dimOf(x, 0), G.dimOf(x, 1), 8]); // [B, N, 8]: two run-time sizes
    const again = G.reshape(G.relu(rows), [G.dimOf(x, 0), G.dimOf(x, 1), 8]); // the same target as `back`
    const target = (t: G.Tensor) => g.nodes.find((n) => n.outputs[0] === t.name)!.inputs[1];
    const constant = (t: G.Tensor) => {
      const v = g.constantValue(g.tensor(target(t)));
      return v ? Array.from(v.data as BigInt64Array, Number) : undefined;
    };
    assert.deepEqual(constant(heads), [0, 0, 2, 4]);
    assert.deepEqual(constant(rows), [-1, 8]);
    // no -1 beside a copy: ONNX Runtime cannot infer -1 when a copied size is 0
    assert.equal(constant(wide), undefined);
    assert.equal(constant(back), undefined);
    assert.equal(target(again), target(back), 'one Concat per distinct run-time target');
    for (const [t, name] of [[heads, 'heads'], [rows, 'rows'], [wide, 'wide'], [back, 'back']] as const) g.output(t, name);
    for (const [B, N] of [[2, 3], [1, 5], [2, 0]]) {
      const xv = rng.tensor([B, N, 8]);
      const out = await runGraph(g, { x: xv });
      assert.deepEqual(out.heads.shape, [B, N, 2, 4]);
      assert.deepEqual(out.rows.shape, [B * N, 8]);
      assert.deepEqual(out.wide.shape, [B, N * 8]);
      assert.deepEqual(out.back.shape, [B, N, 8]);
      for (const k of ['heads', 'rows', 'wide', 'back']) assertClose(out[k], xv.data, EXACT, `${k} at ${B}x${N}`);
    }
  });

  test('element count mismatch is a build-time error naming the op and shapes', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 3, 4]);
    assert.throws(() => G.reshape(x, [5, 5]), /Reshape x float32\[2, 3, 4\] -> \[5, 5\]: 24 elements cannot become 25/);
    assert.throws(() => G.reshape(x, [5, -1]), /Reshape x float32\[2, 3, 4\] -> \[5, -1\]: 24 elements do not fit/);
    assert.throws(() => G.reshape(x, [-1, -1]), /Reshape .*at most one -1/);
  });
});

describe('layout ops', () => {
  const rng = new Rng(11);

  test('transpose [2,3,4] with perm [2,0,1]', async () => {
    const x = rng.tensor([2, 3, 4]);
    const perm = [2, 0, 1];
    const y = await runUnary((t) => G.transpose(t, perm), x);
    const outShape = perm.map((p) => x.shape[p]);
    assert.deepEqual(y.shape, outShape);
    const expected = new Float32Array(24);
    for (let i = 0; i < 24; i++) {
      const o = unravel(i, outShape);
      const src = new Array<number>(3);
      perm.forEach((p, k) => (src[p] = o[k]));
      expected[i] = x.data[ravel(src, x.shape)];
    }
    assertClose(y, expected, EXACT, 'transpose');
    const g = new Graph();
    assert.throws(() => G.transpose(g.input('z', 'float32', [2, 3]), [0, 0]), /Transpose z float32\[2, 3\]: perm \[0, 0\]/);
  });

  test('concat on the middle axis', async () => {
    const a = rng.tensor([2, 1, 3]);
    const b = rng.tensor([2, 4, 3]);
    const g = new Graph();
    const ta = g.input('a', 'float32', [2, 1, 3]);
    const tb = g.input('b', 'float32', [2, 4, 3]);
    const y = g.output(G.concat([ta, tb], -2), 'y');
    assert.deepEqual(y.shape, [2, 5, 3]);
    const out = (await runGraph(g, { a, b })).y;
    const expected = new Float32Array(30);
    for (let i = 0; i < 30; i++) {
      const [p, q, r] = unravel(i, [2, 5, 3]);
      expected[i] = q < 1 ? a.data[ravel([p, q, r], a.shape)] : b.data[ravel([p, q - 1, r], b.shape)];
    }
    assertClose(out, expected, EXACT, 'concat');
    assert.throws(() => G.concat([ta, g.input('c', 'float32', [3, 4, 3])], 1), /Concat on axis 1: axis 0 differs/);
  });

  test('split into unequal pieces', async () => {
    const x = rng.tensor([3, 7]);
    const g = new Graph();
    const t = g.input('x', 'float32', [3, 7]);
    const parts = G.split(t, 1, [2, 4, 1]);
    parts.forEach((p, i) => g.output(p, `p${i}`));
    const out = await runGraph(g, { x });
    let start = 0;
    [2, 4, 1].forEach((size, i) => {
      const expected: number[] = [];
      for (let r = 0; r < 3; r++) for (let c = start; c < start + size; c++) expected.push(x.data[r * 7 + c]);
      assert.deepEqual(out[`p${i}`].shape, [3, size]);
      assertClose(out[`p${i}`], expected, EXACT, `split part ${i}`);
      start += size;
    });
    assert.throws(() => G.split(t, 1, [2, 2]), /Split x float32\[3, 7\] on axis 1: sizes \[2, 2\] sum to 4, not 7/);
  });

  test('slice with negative bounds, steps, and a reversing step', async () => {
    const x = rng.tensor([4, 5, 6]);
    const g = new Graph();
    const t = g.input('x', 'float32', [4, 5, 6]);
    const a = g.output(G.slice(t, [1, 2], [1, -4], [-1, 6], [1, 2]), 'a');
    const b = g.output(G.slice(t, [2], [-1], [-1000], [-2]), 'b');
    // odd length 5 reversed with step -2 keeps 3 elements (4, 2, 0): ONNX clamps a negative-step end to -1
    const c = g.output(G.slice(t, [1], [-1], [-1000], [-2]), 'c');
    assert.deepEqual(a.shape, [4, 3, 2]);
    assert.deepEqual(b.shape, [4, 5, 3]);
    assert.deepEqual(c.shape, [4, 3, 6]);
    const out = await runGraph(g, { x });
    const refA: number[] = [];
    for (let i = 0; i < 4; i++) for (let j = 1; j < 4; j++) for (let k = 2; k < 6; k += 2) refA.push(x.data[ravel([i, j, k], x.shape)]);
    const refB: number[] = [];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 5; j++) for (let k = 5; k >= 0; k -= 2) refB.push(x.data[ravel([i, j, k], x.shape)]);
    assert.deepEqual(out.a.shape, [4, 3, 2]);
    assertClose(out.a, refA, EXACT, 'slice a');
    assert.deepEqual(out.b.shape, [4, 5, 3]);
    assertClose(out.b, refB, EXACT, 'slice b');
    const refC: number[] = [];
    for (let i = 0; i < 4; i++) for (let j = 4; j >= 0; j -= 2) for (let k = 0; k < 6; k++) refC.push(x.data[ravel([i, j, k], x.shape)]);
    assert.deepEqual(out.c.shape, [4, 3, 6]);
    assertClose(out.c, refC, EXACT, 'slice c');
  });

  test('gather with 2-D (and negative) indices on axis 1', async () => {
    const x = rng.tensor([2, 5, 3]);
    const idx = [4, 0, -1, 2];
    const g = new Graph();
    const t = g.input('x', 'float32', [2, 5, 3]);
    const y = g.output(G.gather(t, g.constant(HostTensor.int64([2, 2], idx)), 1), 'y');
    assert.deepEqual(y.shape, [2, 2, 2, 3]);
    const out = (await runGraph(g, { x })).y;
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) for (const j of idx) for (let k = 0; k < 3; k++) expected.push(x.data[ravel([i, (j + 5) % 5, k], x.shape)]);
    assertClose(out, expected, EXACT, 'gather');
    assert.throws(() => G.gather(t, t, 0), /Gather: x float32\[2, 5, 3\] has dtype float32, expected one of int64, int32/);
  });

  test('pad: constant, reflect and edge', async () => {
    const x = rng.tensor([2, 3, 4]);
    const pads = [0, 1, 2, 1, 0, 1]; // begin [0,1,2], end [1,0,1]
    const outShape = [3, 4, 7];
    const g = new Graph();
    const t = g.input('x', 'float32', [2, 3, 4]);
    const c = g.output(G.pad(t, pads, 1.5), 'c');
    assert.deepEqual(c.shape, outShape);
    const rPads = [0, 1, 2, 0, 1, 1];
    g.output(G.pad(t, rPads, 0, 'reflect'), 'r');
    g.output(G.pad(t, rPads, 0, 'edge'), 'e');
    const out = await runGraph(g, { x });
    const cRef = new Float32Array(elementCountOf(outShape));
    for (let i = 0; i < cRef.length; i++) {
      const o = unravel(i, outShape);
      const src = o.map((v, d) => v - pads[d]);
      cRef[i] = src.every((v, d) => v >= 0 && v < x.shape[d]) ? x.data[ravel(src, x.shape)] : 1.5;
    }
    assertClose(out.c, cRef, EXACT, 'constant pad');
    const rShape = [2, 5, 7];
    const reflect = (v: number, n: number) => (v < 0 ? -v : v >= n ? 2 * (n - 1) - v : v);
    const edge = (v: number, n: number) => Math.min(Math.max(v, 0), n - 1);
    for (const [name, fix] of [['r', reflect], ['e', edge]] as const) {
      const ref = new Float32Array(elementCountOf(rShape));
      for (let i = 0; i < ref.length; i++) {
        const o = unravel(i, rShape);
        ref[i] = x.data[ravel(o.map((v, d) => fix(v - rPads[d], x.shape[d])), x.shape)];
      }
      assert.deepEqual(out[name].shape, rShape);
      assertClose(out[name], ref, EXACT, `${name} pad`);
    }
  });

  test('expand to static and run-time shapes', async () => {
    const x = rng.tensor([3, 1]);
    const g = new Graph();
    const t = g.input('x', 'float32', [3, 1]);
    const n = g.input('n', 'float32', ['N']);
    const a = g.output(G.expand(t, [2, 3, 4]), 'a');
    assert.deepEqual(a.shape, [2, 3, 4]);
    const b = g.output(G.expand(t, [3, G.dimOf(n, 0)]), 'b');
    assert.deepEqual(b.shape, [3, 'N']);
    const out = await runGraph(g, { x, n: HostTensor.float32([5]) });
    const refA: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) refA.push(x.data[j]);
    assertClose(out.a, refA, EXACT, 'expand static');
    const refB: number[] = [];
    for (let j = 0; j < 3; j++) for (let k = 0; k < 5; k++) refB.push(x.data[j]);
    assert.deepEqual(out.b.shape, [3, 5]);
    assertClose(out.b, refB, EXACT, 'expand symbolic');
    assert.throws(() => G.expand(t, [2, 4, 4]), /Expand x float32\[3, 1\] to \[2, 4, 4\]: axis 1 has size 3, cannot become 4/);
  });

  test('unsqueeze and squeeze', async () => {
    const x = rng.tensor([3, 4]);
    const g = new Graph();
    const t = g.input('x', 'float32', [3, 4]);
    const u = g.output(G.unsqueeze(t, [0, -1]), 'u');
    assert.deepEqual(u.shape, [1, 3, 4, 1]);
    const s = g.output(G.squeeze(G.unsqueeze(t, [1]), [1]), 's');
    assert.deepEqual(s.shape, [3, 4]);
    const out = await runGraph(g, { x });
    assert.deepEqual(out.u.shape, [1, 3, 4, 1]);
    assertClose(out.u, x.data, EXACT, 'unsqueeze');
    assert.deepEqual(out.s.shape, [3, 4]);
    assertClose(out.s, x.data, EXACT, 'squeeze');
    assert.throws(() => G.squeeze(t, [0]), /Squeeze x float32\[3, 4\]: axis 0 has size 3, not 1/);
  });
});

describe('cast, range, cumsum', () => {
  test('cast float32 <-> float16, int64, bool', async () => {
    // 0.1 is not representable in fp16: round-to-nearest gives 0x2E66 = 1638/16384 = 0.0999755859375
    const x = HostTensor.float32([6], [0.1, -2, 65504, 0.5, 0, 3]);
    const g = new Graph();
    const t = g.input('x', 'float32', [6]);
    const h = G.cast(t, 'float16');
    assert.equal(h.dtype, 'float16');
    g.output(G.cast(h, 'float32'), 'half');
    g.output(G.cast(t, 'int64'), 'i64');
    g.output(G.cast(G.cast(t, 'int64'), 'float32'), 'back');
    g.output(G.cast(t, 'bool'), 'b');
    assert.equal(G.cast(t, 'float32'), t, 'a cast to the same dtype is a no-op');
    const out = await runGraph(g, { x });
    assertClose(out.half, [0.0999755859375, -2, 65504, 0.5, 0, 3], EXACT, 'fp16 round trip');
    assert.deepEqual(ints(out.i64), [0, -2, 65504, 0, 0, 3]);
    assertClose(out.back, [0, -2, 65504, 0, 0, 3], EXACT, 'int64 -> float32');
    assert.deepEqual(Array.from(out.b.data as Uint8Array), [1, 1, 1, 1, 0, 1]);
  });

  test('cast to and from bfloat16 inside the graph (exactly representable values)', async () => {
    const x = HostTensor.float32([4], [1, -2.5, 3.140625, 256]);
    const y = await runUnary((t) => G.cast(G.cast(t, 'bfloat16'), 'float32'), x);
    assertClose(y, x.data, EXACT, 'bf16 round trip');
  });

  test('range in int64 and float32', async () => {
    const g = new Graph();
    const n = g.input('n', 'int64', []);
    const i = g.output(G.range(g.scalar(2, 'int64'), n, g.scalar(3, 'int64'), 'R'), 'i');
    assert.deepEqual(i.shape, ['R']);
    g.output(G.range(g.scalar(0.5), g.scalar(2), g.scalar(0.25), 6), 'f');
    const out = await runGraph(g, { n: HostTensor.int64([], [11]) });
    assert.deepEqual(ints(out.i), [2, 5, 8]);
    assertClose(out.f, [0.5, 0.75, 1, 1.25, 1.5, 1.75], EXACT, 'float range');
  });

  test('cumsum along each axis', async () => {
    const rng = new Rng(12);
    const x = rng.tensor([3, 4]);
    const g = new Graph();
    const t = g.input('x', 'float32', [3, 4]);
    g.output(G.cumsum(t, 1), 'c1');
    g.output(G.cumsum(t, 0), 'c0');
    const out = await runGraph(g, { x });
    const c1: number[] = [];
    const c0: number[] = [];
    for (let r = 0; r < 3; r++) {
      let s = 0;
      for (let c = 0; c < 4; c++) c1.push((s += x.data[r * 4 + c]));
    }
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let k = 0; k <= r; k++) s += x.data[k * 4 + c];
      c0.push(s);
    }
    assertClose(out.c1, c1, { atol: 1e-6, rtol: 1e-5 }, 'cumsum axis 1');
    assertClose(out.c0, c0, { atol: 1e-6, rtol: 1e-5 }, 'cumsum axis 0');
  });
});

describe('symbolic dimension labels', () => {
  test('mulDims and divDim fold static sizes and label run-time ones', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['B', 'H', 8]);
    assert.equal(G.mulDims(G.dimOf(x, 2), 2).label, 16);
    assert.equal(G.mulDims(G.dimOf(x, 0), G.dimOf(x, 1)).label, 'B*H');
    assert.equal(G.divDim(G.dimOf(x, 2), 4).label, 2);
    assert.equal(G.divDim(G.mulDims(G.dimOf(x, 0), G.dimOf(x, 1)), 2).label, '(B*H)/2');
    assert.equal(G.flattenLabel([2, 3, 4]), 24);
    assert.equal(G.flattenLabel(['B', 1, 'N']), 'B*N');
    assert.throws(() => G.divDim(G.dimOf(x, 2), 3), /dimension 8 is not divisible by 3/);
  });
});
