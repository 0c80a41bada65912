// Finite-difference checks of every gradient rule on small random inputs (float32, central differences), through
// the same op builders the models use, including broadcasting, transposed products, grouped / strided / padded
// convolutions and the norms; plus the engine's bookkeeping (shared tensors, unused parameters, missing rules).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AutodiffError,
  Graph,
  abs,
  add,
  channelRmsNorm,
  clip,
  concat,
  conv2d,
  cos,
  depthToSpace,
  differentiableOps,
  div,
  erf,
  exp,
  expand,
  fusedMatmul,
  gather,
  gelu,
  geluTanh,
  gemm,
  gradients,
  greater,
  layerNorm,
  linear,
  log,
  matmul,
  maximum,
  minimum,
  mul,
  neg,
  pad,
  pixelShuffle,
  pixelUnshuffle,
  pow,
  reciprocal,
  reduceMax,
  reduceMean,
  reduceSum,
  reduceSumSquare,
  relu,
  reshape,
  rmsNorm,
  sigmoid,
  sin,
  slice,
  softmax,
  split,
  sqrt,
  squeeze,
  sub,
  tanh,
  transpose,
  unsqueeze,
  upsampleNearest,
  where,
} from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { awayFromZero, gradCheck } from './helpers/gradcheck.js';
import { runGraph } from './helpers/run-graph.js';

const positive = (n: number, seed: number) => awayFromZero(n, seed, 0.5, 2).map(Math.abs);

describe('autodiff: element-wise rules (finite differences)', () => {
  it('Add, Sub, Mul, Div with broadcasting', async () => {
    await gradCheck('add', [{ shape: [2, 3, 4] }, { shape: [3, 1] }], (_g, [a, b]) => add(a, b));
    await gradCheck('sub', [{ shape: [3, 1] }, { shape: [2, 3, 4] }], (_g, [a, b]) => sub(a, b));
    await gradCheck('mul', [{ shape: [2, 1, 4] }, { shape: [3, 4] }], (_g, [a, b]) => mul(a, b));
    await gradCheck('div', [{ shape: [2, 3] }, { shape: [1, 3], values: positive(3, 5) }], (_g, [a, b]) => div(a, b));
    await gradCheck('mul-self', [{ shape: [5] }], (_g, [a]) => mul(a, a));
  });

  it('Pow, Neg, Abs, Relu, Sigmoid, Tanh, Exp, Log, Sqrt, Reciprocal, Sin, Cos, Erf, Softplus', async () => {
    await gradCheck('pow', [{ shape: [6], values: positive(6, 1) }, { shape: [1], values: Float32Array.of(2.5) }], (_g, [a, p]) => pow(a, p));
    await gradCheck('neg', [{ shape: [4] }], (_g, [a]) => neg(a));
    await gradCheck('abs', [{ shape: [8], values: awayFromZero(8, 2) }], (_g, [a]) => abs(a));
    await gradCheck('relu', [{ shape: [8], values: awayFromZero(8, 3) }], (_g, [a]) => relu(a));
    await gradCheck('sigmoid', [{ shape: [6] }], (_g, [a]) => sigmoid(a));
    await gradCheck('tanh', [{ shape: [6] }], (_g, [a]) => tanh(a));
    await gradCheck('exp', [{ shape: [6] }], (_g, [a]) => exp(a));
    await gradCheck('log', [{ shape: [6], values: positive(6, 4) }], (_g, [a]) => log(a));
    await gradCheck('sqrt', [{ shape: [6], values: positive(6, 5) }], (_g, [a]) => sqrt(a));
    await gradCheck('reciprocal', [{ shape: [6], values: positive(6, 6) }], (_g, [a]) => reciprocal(a));
    await gradCheck('sin', [{ shape: [6] }], (_g, [a]) => sin(a));
    await gradCheck('cos', [{ shape: [6] }], (_g, [a]) => cos(a));
    await gradCheck('erf', [{ shape: [6] }], (_g, [a]) => erf(a));
    await gradCheck('softplus', [{ shape: [6] }], (g, [a]) => g.node1('Softplus', [a], 'float32', a.shape));
  });

  it('Gelu (tanh approximation and exact)', async () => {
    await gradCheck('gelu-tanh', [{ shape: [10] }], (_g, [a]) => geluTanh(a));
    await gradCheck('gelu', [{ shape: [10] }], (_g, [a]) => gelu(a));
  });

  it('Max, Min, Clip, Where, Sum, Identity, Cast', async () => {
    const a = awayFromZero(6, 7);
    const b = a.map((v, i) => v + (i % 2 ? 0.4 : -0.4));
    await gradCheck('max', [{ shape: [6], values: a }, { shape: [6], values: b }], (_g, [x, y]) => maximum(x, y));
    await gradCheck('min', [{ shape: [6], values: a }, { shape: [6], values: b }], (_g, [x, y]) => minimum(x, y));
    await gradCheck('clip', [{ shape: [8], values: Float32Array.of(-1.4, -0.9, -0.3, 0.2, 0.45, 0.8, 1.3, -0.6) }], (_g, [x]) => clip(x, -0.5, 0.5));
    await gradCheck('where', [{ shape: [2, 3] }, { shape: [3] }, { shape: [2, 3], constant: true }], (_g, [x, y, c]) => where(greater(c, 0), x, y));
    await gradCheck('sum', [{ shape: [3] }, { shape: [2, 3] }, { shape: [3] }], (g, xs) => g.node1('Sum', xs, 'float32', [2, 3]));
    await gradCheck('identity', [{ shape: [3] }], (g, [x]) => g.node1('Identity', [x], 'float32', x.shape));
    await gradCheck('cast', [{ shape: [3] }], (g, [x]) => g.node1('Cast', [x], 'float32', x.shape, { to: 1 }));
  });
});

describe('autodiff: matrix products (finite differences)', () => {
  it('MatMul batched, broadcast over a 2-D operand on either side', async () => {
    await gradCheck('matmul', [{ shape: [2, 3, 4] }, { shape: [2, 4, 5] }], (_g, [a, b]) => matmul(a, b));
    await gradCheck('matmul-2d-b', [{ shape: [2, 3, 4] }, { shape: [4, 5] }], (_g, [a, b]) => matmul(a, b));
    await gradCheck('matmul-2d-a', [{ shape: [3, 4] }, { shape: [2, 2, 4, 5] }], (_g, [a, b]) => matmul(a, b));
  });

  it('FusedMatMul with every transpose combination and alpha', async () => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const aShape = transA ? [2, 4, 3] : [2, 3, 4];
        const bShape = transB ? [5, 4] : [4, 5];
        await gradCheck(`fused-${transA}-${transB}`, [{ shape: aShape }, { shape: bShape }], (_g, [a, b]) => fusedMatmul(a, b, { transA, transB, alpha: 0.7 }));
        await gradCheck(`fused-batched-${transA}-${transB}`, [{ shape: aShape }, { shape: [2, ...bShape] }], (_g, [a, b]) => fusedMatmul(a, b, { transA, transB }));
      }
    }
    await gradCheck('fused-2d-left', [{ shape: [5, 4] }, { shape: [2, 3, 4] }], (_g, [w, x]) => fusedMatmul(w, x, { transB: true }));
  });

  it('Gemm with transposes, alpha, beta and a broadcast bias; linear on 3-D input', async () => {
    await gradCheck('gemm', [{ shape: [3, 4] }, { shape: [5, 4] }, { shape: [5] }], (_g, [a, b, c]) => gemm(a, b, c, { transB: true, alpha: 0.5, beta: 2 }));
    await gradCheck('gemm-tA', [{ shape: [4, 3] }, { shape: [4, 5] }, { shape: [3, 5] }], (_g, [a, b, c]) => gemm(a, b, c, { transA: true }));
    await gradCheck('linear-3d', [{ shape: [2, 3, 4] }, { shape: [6, 4] }, { shape: [6] }], (_g, [x, w, b]) => linear(x, w, b));
  });
});

describe('autodiff: convolutions and re-arrangements (finite differences)', () => {
  it('dense 3x3 with padding, stride 2, groups, depthwise 3x3 and 5x5, 1x1 (grouped), asymmetric 2x2', async () => {
    await gradCheck('conv3x3', [{ shape: [2, 3, 5, 4] }, { shape: [4, 3, 3, 3] }, { shape: [4] }], (_g, [x, w, b]) => conv2d(x, w, b, { padding: 1 }));
    await gradCheck('conv-stride2', [{ shape: [1, 2, 6, 6] }, { shape: [3, 2, 3, 3] }, { shape: [3] }], (_g, [x, w, b]) => conv2d(x, w, b, { padding: 1, stride: 2 }));
    await gradCheck('conv-stride2-odd', [{ shape: [1, 2, 5, 7] }, { shape: [3, 2, 3, 3] }], (_g, [x, w]) => conv2d(x, w, null, { padding: 1, stride: 2 }));
    await gradCheck('conv-groups', [{ shape: [1, 4, 4, 4] }, { shape: [6, 2, 3, 3] }], (_g, [x, w]) => conv2d(x, w, null, { padding: 1, groups: 2 }));
    await gradCheck('depthwise3', [{ shape: [2, 3, 4, 5] }, { shape: [3, 1, 3, 3] }, { shape: [3] }], (_g, [x, w, b]) => conv2d(x, w, b, { padding: 1, groups: 3 }));
    await gradCheck('depthwise5', [{ shape: [1, 2, 5, 5] }, { shape: [2, 1, 5, 5] }], (_g, [x, w]) => conv2d(x, w, null, { padding: 2, groups: 2 }));
    await gradCheck('conv1x1', [{ shape: [2, 3, 3, 2] }, { shape: [4, 3, 1, 1] }, { shape: [4] }], (_g, [x, w, b]) => conv2d(x, w, b));
    await gradCheck('conv1x1-grouped', [{ shape: [1, 4, 3, 3] }, { shape: [4, 2, 1, 1] }], (_g, [x, w]) => conv2d(x, w, null, { groups: 2 }));
    await gradCheck('conv2x2-asym', [{ shape: [1, 2, 4, 3] }, { shape: [2, 2, 2, 2] }, { shape: [2] }], (_g, [x, w, b]) => conv2d(x, w, b, { pads: [1, 0, 0, 1] }));
  });

  it('nearest up-sampling, pixel (un)shuffle, depth-to-space (DCR)', async () => {
    await gradCheck('upsample', [{ shape: [1, 2, 2, 3] }], (_g, [x]) => upsampleNearest(x, 2));
    await gradCheck('pixel-shuffle', [{ shape: [1, 8, 2, 3] }], (_g, [x]) => pixelShuffle(x, 2));
    await gradCheck('depth-to-space-dcr', [{ shape: [1, 8, 2, 2] }], (_g, [x]) => depthToSpace(x, 2, 'DCR'));
    await gradCheck('pixel-unshuffle', [{ shape: [1, 2, 4, 6] }], (_g, [x]) => pixelUnshuffle(x, 2));
  });
});

describe('autodiff: reductions, softmax and norms (finite differences)', () => {
  it('ReduceSum, ReduceMean, ReduceSumSquare, ReduceMax (keepdims on and off)', async () => {
    await gradCheck('sum-keep', [{ shape: [2, 3, 4] }], (_g, [x]) => reduceSum(x, [1], true));
    await gradCheck('sum-drop', [{ shape: [2, 3, 4] }], (_g, [x]) => reduceSum(x, [0, 2], false));
    await gradCheck('mean', [{ shape: [2, 3, 4] }], (_g, [x]) => reduceMean(x, [-1], false));
    await gradCheck('sumsq', [{ shape: [2, 3, 4] }], (_g, [x]) => reduceSumSquare(x, [1], true));
    await gradCheck('max', [{ shape: [2, 5], values: Float32Array.of(0.1, 0.9, -0.3, 0.5, 0.2, -1, -0.2, 0.4, 1.2, 0) }], (_g, [x]) => reduceMax(x, [1], false));
  });

  it('Softmax on the last and an inner axis', async () => {
    await gradCheck('softmax-last', [{ shape: [2, 5] }], (_g, [x]) => softmax(x, -1));
    await gradCheck('softmax-inner', [{ shape: [2, 4, 3] }], (_g, [x]) => softmax(x, 1));
  });

  it('LayerNorm with weight and bias, RMSNorm, channel RMSNorm', async () => {
    await gradCheck('layernorm', [{ shape: [2, 3, 6] }, { shape: [6] }, { shape: [6] }], (_g, [x, w, b]) => layerNorm(x, 1e-5, w, b));
    await gradCheck('layernorm-plain', [{ shape: [4, 5] }], (_g, [x]) => layerNorm(x, 1e-6));
    await gradCheck('rmsnorm', [{ shape: [2, 3, 6] }, { shape: [6] }], (_g, [x, w]) => rmsNorm(x, 1e-5, w));
    await gradCheck('channel-rmsnorm', [{ shape: [2, 4, 2, 3] }, { shape: [4] }, { shape: [4] }], (_g, [x, w, b]) => channelRmsNorm(x, 1e-5, w, b));
  });
});

describe('autodiff: shape rules (finite differences)', () => {
  it('Reshape, Transpose, Concat, Split, Slice, Pad, Expand, Unsqueeze, Squeeze', async () => {
    await gradCheck('reshape', [{ shape: [2, 6] }], (_g, [x]) => mul(reshape(x, [3, 4]), reshape(x, [3, 4])));
    await gradCheck('transpose', [{ shape: [2, 3, 4] }], (_g, [x]) => transpose(x, [2, 0, 1]));
    await gradCheck('concat', [{ shape: [2, 3] }, { shape: [2, 2] }], (_g, [a, b]) => concat([a, b, a], 1));
    await gradCheck('split', [{ shape: [2, 5] }], (_g, [x]) => {
      const [p, , r] = split(x, 1, [2, 1, 2]);
      return mul(p, r); // the middle piece is unused: its gradient is zero
    });
    await gradCheck('slice', [{ shape: [3, 6] }], (_g, [x]) => slice(x, [0, 1], [1, -4], [3, -1]));
    await gradCheck('pad', [{ shape: [2, 3] }], (_g, [x]) => pad(x, [1, 0, 0, 2], 1));
    await gradCheck('expand', [{ shape: [3, 1] }], (_g, [x]) => expand(x, [2, 3, 4]));
    await gradCheck('unsqueeze-squeeze', [{ shape: [3, 1, 2] }], (_g, [x]) => unsqueeze(squeeze(x, [1]), [0]));
  });

  it('Gather with repeated indices on axis 0 and axis 1', async () => {
    await gradCheck('gather-0', [{ shape: [4, 3] }], (g, [x]) => gather(x, g.constant(HostTensor.int64([5], [0, 2, 2, 3, 0]), 'idx'), 0));
    await gradCheck('gather-1', [{ shape: [2, 3, 2] }], (g, [x]) => gather(x, g.constant(HostTensor.int64([2, 2], [0, 0, 1, 2]), 'idx'), 1));
  });
});

describe('autodiff: engine', () => {
  it('sums the contributions of a tensor read twice, gives zeros to an unused parameter', async () => {
    const g = new Graph('engine');
    const x = g.input('x', 'float32', [3]);
    const unused = g.input('u', 'float32', [2]);
    const loss = reduceSum(add(mul(x, x), mul(x, 3)), [0], false); // d/dx = 2x + 3
    const [gx, gu] = gradients(loss, [x, unused]);
    g.output(gx, 'gx');
    g.output(gu, 'gu');
    const out = await runGraph(g, { x: HostTensor.float32([3], [1, -2, 0.5]), u: HostTensor.float32([2], [7, 8]) });
    assert.deepEqual([...(out.gx.data as Float32Array)], [5, -1, 4]);
    assert.deepEqual([...(out.gu.data as Float32Array)], [0, 0]);
  });

  it('refuses an op without a rule, naming the op and the node', () => {
    const g = new Graph('norule');
    const x = g.input('x', 'float32', [3]);
    const y = g.node1('Floor', [x], 'float32', [3]);
    assert.throws(() => gradients(reduceSum(y, [0], false), [x]), (e: Error) => e instanceof AutodiffError && /no gradient rule for op Floor/.test(e.message));
  });

  it('has rules for the ops the three models use', () => {
    const ops = differentiableOps();
    for (const op of ['Conv', 'Gemm', 'FusedMatMul', 'MatMul', 'LayerNormalization', 'RMSNormalization', 'Softmax', 'Resize', 'DepthToSpace', 'Gather', 'ReduceSumSquare']) {
      assert.ok(ops.includes(op), `no rule for ${op}`);
    }
  });
});
