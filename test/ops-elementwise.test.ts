// Element-wise ops against plain-loop references: broadcasting arithmetic, activations (SANA.md conventions for
// SiLU and GELU-tanh), comparisons, where, clip.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as G from '../src/graph/index.js';
import { Graph, Tensor } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { assertClose } from './helpers/compare.js';
import { Rng } from './helpers/random.js';
import { broadcastMap, erfRef } from './helpers/reference.js';
import { runGraph } from './helpers/run-graph.js';

const TOL = { atol: 1e-6, rtol: 1e-5 };

async function runBinary(
  build: (a: Tensor, b: Tensor) => Tensor,
  a: HostTensor,
  b: HostTensor,
): Promise<HostTensor> {
  const g = new Graph();
  const ta = g.input('a', a.dtype, a.shape);
  const tb = g.input('b', b.dtype, b.shape);
  g.output(build(ta, tb), 'y');
  return (await runGraph(g, { a, b })).y;
}

async function runUnary(build: (x: Tensor) => Tensor, x: HostTensor): Promise<HostTensor> {
  const g = new Graph();
  g.output(build(g.input('x', x.dtype, x.shape)), 'y');
  return (await runGraph(g, { x })).y;
}

describe('binary arithmetic with NumPy broadcasting', () => {
  const rng = new Rng(1);
  const cases: Array<[string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number]> = [
    ['add', G.add, (x, y) => x + y],
    ['sub', G.sub, (x, y) => x - y],
    ['mul', G.mul, (x, y) => x * y],
    ['div', G.div, (x, y) => x / y],
    ['maximum', G.maximum, (x, y) => Math.max(x, y)],
    ['minimum', G.minimum, (x, y) => Math.min(x, y)],
  ];
  for (const [name, build, ref] of cases) {
    test(`${name}: [2,1,3] with [4,1] -> [2,4,3]`, async () => {
      const a = rng.tensor([2, 1, 3]);
      // keep divisors away from zero
      const b = HostTensor.float32([4, 1], rng.floats(4, 0.5, 2).map((v, i) => (i % 2 ? -v : v)));
      const y = await runBinary(build, a, b);
      const expected = broadcastMap([a, b], ref);
      assert.deepEqual(y.shape, [2, 4, 3]);
      assertClose(y, expected.data, TOL, name);
    });
  }

  test('pow with a positive base and broadcast exponent [3] onto [2,3]', async () => {
    const a = rng.tensor([2, 3], 0.1, 3);
    const b = rng.tensor([3], -2, 2);
    const y = await runBinary(G.pow, a, b);
    assertClose(y, broadcastMap([a, b], Math.pow).data, TOL, 'pow');
  });

  test('plain numbers become scalars of the tensor dtype, on either side', async () => {
    const x = rng.tensor([5]);
    const y = await runUnary((t) => G.sub(G.mul(2.5, t), G.div(t, 4)), x);
    assertClose(y, Array.from(x.data, (v) => 2.5 * v - v / 4), TOL, 'scalar arithmetic');
  });

  test('numbers keep the dtype of the tensor: float16 and int64 arithmetic', async () => {
    const x = HostTensor.float32([4], [1, -2, 0.5, 8]);
    const g = new Graph();
    const h = G.cast(g.input('x', 'float32', [4]), 'float16');
    const hy = G.add(G.mul(h, 3), 0.5);
    assert.equal(hy.dtype, 'float16');
    g.output(G.cast(hy, 'float32'), 'half');
    const i = G.cast(g.input('x2', 'float32', [4]), 'int64');
    const iy = G.sub(G.mul(i, 2), 1);
    assert.equal(iy.dtype, 'int64');
    g.output(iy, 'ints');
    const out = await runGraph(g, { x, x2: x });
    assertClose(out.half, [3.5, -5.5, 2, 24.5], { atol: 0, rtol: 0 }, 'fp16 scalars');
    assert.deepEqual(Array.from(out.ints.data as BigInt64Array, Number), [1, -5, -1, 15]);
  });

  test('symbolic batch dimension broadcasts against a static one', async () => {
    const g = new Graph();
    const a = g.input('a', 'float32', ['B', 1, 3]);
    const b = g.input('b', 'float32', [4, 1]);
    const y = g.output(G.add(a, b), 'y');
    assert.deepEqual(y.shape, ['B', 4, 3]);
    const av = rng.tensor([3, 1, 3]);
    const bv = rng.tensor([4, 1]);
    const out = (await runGraph(g, { a: av, b: bv })).y;
    assert.deepEqual(out.shape, [3, 4, 3]);
    assertClose(out, broadcastMap([av, bv], (p, q) => p + q).data, TOL, 'symbolic add');
  });
});

describe('unary activations', () => {
  const rng = new Rng(2);
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  const cases: Array<[string, (x: Tensor) => Tensor, (v: number) => number, number, number]> = [
    ['relu', G.relu, (v) => Math.max(v, 0), -3, 3],
    ['sigmoid', G.sigmoid, sigmoid, -6, 6],
    ['tanh', G.tanh, Math.tanh, -4, 4],
    ['exp', G.exp, Math.exp, -4, 4],
    ['log', G.log, Math.log, 0.05, 5],
    ['sqrt', G.sqrt, Math.sqrt, 0, 5],
    ['reciprocal', G.reciprocal, (v) => 1 / v, 0.2, 5],
    ['sin', G.sin, Math.sin, -4, 4],
    ['cos', G.cos, Math.cos, -4, 4],
    ['erf', G.erf, erfRef, -3, 3],
    ['abs', G.abs, Math.abs, -3, 3],
    ['neg', G.neg, (v) => -v, -3, 3],
    // SANA.md conventions: SiLU(x) = x*sigmoid(x)
    ['silu', G.silu, (v) => v * sigmoid(v), -6, 6],
    // SANA.md conventions: GELU-tanh(x) = 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))
    ['geluTanh', G.geluTanh, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), -5, 5],
    ['gelu (erf)', G.gelu, (v) => 0.5 * v * (1 + erfRef(v / Math.SQRT2)), -5, 5],
  ];
  for (const [name, build, ref, lo, hi] of cases) {
    test(name, async () => {
      const x = rng.tensor([3, 17], lo, hi);
      const y = await runUnary(build, x);
      assert.deepEqual(y.shape, [3, 17]);
      assertClose(y, Array.from(x.data, ref), TOL, name);
    });
  }

  test('clip with both bounds, and with only a lower bound', async () => {
    const x = rng.tensor([20], -3, 3);
    const g = new Graph();
    const t = g.input('x', 'float32', [20]);
    g.output(G.clip(t, -1, 0.5), 'both');
    g.output(G.clip(t, -1), 'lower');
    const out = await runGraph(g, { x });
    assertClose(out.both, Array.from(x.data, (v) => Math.min(Math.max(v, -1), 0.5)), TOL, 'clip both');
    assertClose(out.lower, Array.from(x.data, (v) => Math.max(v, -1)), TOL, 'clip lower');
  });
});

describe('comparisons, not, where', () => {
  const rng = new Rng(3);

  test('less / greater / equal broadcast and return bool', async () => {
    const a = HostTensor.float32([2, 3], [1, 2, 3, 4, 5, 6]);
    const b = HostTensor.float32([3], [2, 2, 7]);
    const g = new Graph();
    const ta = g.input('a', 'float32', [2, 3]);
    const tb = g.input('b', 'float32', [3]);
    for (const [name, op] of [['less', G.less], ['greater', G.greater], ['equal', G.equal]] as const) {
      const t = g.output(op(ta, tb), name);
      assert.equal(t.dtype, 'bool');
    }
    g.output(G.not(G.less(ta, tb)), 'not_less');
    g.output(G.greater(ta, 3), 'gt_scalar');
    const out = await runGraph(g, { a, b });
    const ref = (f: (x: number, y: number) => boolean) => Array.from(broadcastMap([a, b], (x, y) => (f(x, y) ? 1 : 0)).data);
    assert.equal(out.less.dtype, 'bool');
    assert.deepEqual(Array.from(out.less.data as Uint8Array), ref((x, y) => x < y));
    assert.deepEqual(Array.from(out.greater.data as Uint8Array), ref((x, y) => x > y));
    assert.deepEqual(Array.from(out.equal.data as Uint8Array), ref((x, y) => x === y));
    assert.deepEqual(Array.from(out.not_less.data as Uint8Array), ref((x, y) => !(x < y)));
    assert.deepEqual(Array.from(out.gt_scalar.data as Uint8Array), Array.from(a.data, (v) => (v > 3 ? 1 : 0)));
  });

  test('where broadcasts condition [2,1], a [2,3] and a scalar b', async () => {
    const c = new HostTensor('bool', [2, 1], Uint8Array.of(1, 0));
    const a = rng.tensor([2, 3]);
    const g = new Graph();
    const tc = g.input('c', 'bool', [2, 1]);
    const ta = g.input('a', 'float32', [2, 3]);
    g.output(G.where(tc, ta, -7), 'y');
    const y = (await runGraph(g, { c, a })).y;
    const expected = broadcastMap([c, a], (cv, av) => (cv ? av : -7));
    assertClose(y, expected.data, TOL, 'where');
  });

  test('where with two plain numbers gives float32 (additive mask)', async () => {
    const c = new HostTensor('bool', [4], Uint8Array.of(1, 0, 0, 1));
    const g = new Graph();
    const y = g.output(G.where(g.input('c', 'bool', [4]), 0, -1e9), 'y');
    assert.equal(y.dtype, 'float32');
    const out = (await runGraph(g, { c })).y;
    assertClose(out, [0, -1e9, -1e9, 0], TOL, 'mask');
  });

  test('where with a bool condition derived from a comparison (masking)', async () => {
    const x = rng.tensor([4, 5]);
    const y = await runUnary((t) => G.where(G.less(t, 0), G.mul(t, 0.1), t), x);
    assertClose(y, Array.from(x.data, (v) => (v < 0 ? v * 0.1 : v)), TOL, 'leaky mask');
  });
});

describe('build-time checks name the op and the shapes', () => {
  test('bad broadcast', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [4]);
    assert.throws(() => G.add(a, b), (e: Error) => /Add/.test(e.message) && /\[2, 3\]/.test(e.message) && /\[4\]/.test(e.message) && /broadcast/.test(e.message));
  });

  test('dtype mismatch', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2]);
    const b = g.input('b', 'int64', [2]);
    assert.throws(() => G.mul(a, b), /Mul: dtypes differ: a float32\[2\], b int64\[2\]/);
  });

  test('where needs a bool condition', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2]);
    assert.throws(() => G.where(a, a, a), /Where: condition a float32\[2\] must be bool/);
  });

  test('float-only activations reject integer tensors', () => {
    const g = new Graph();
    const i = g.input('i', 'int64', [2]);
    assert.throws(() => G.sigmoid(i), /Sigmoid: i int64\[2\] has dtype int64/);
  });
});
