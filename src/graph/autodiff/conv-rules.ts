// Gradient rules of convolutions and spatial re-arrangements (nearest up-sampling, depth-to-space). For
// Y = conv(X, W) (PyTorch semantics, groups G, zero padding, dilation 1):
// - dX: a stride-1 conv of dY with W flipped and transposed per group (padding k - 1 - p, so the fast Conv kernels
//   run it); strided convs use ConvTranspose with the output padding that restores X's size.
// - dW[o, c, i, j] = sum_{b, y, x} dY[b, o, y, x] Xpad[b, c, s y + i, s x + j]: one batched product of dY with the
//   strided window (i, j) of X per kernel tap (per group), or a product with X itself for 1x1 convs; depthwise
//   convs take a multiply-and-reduce per tap instead of 1x1 products.
// - db = sum of dY over batch and space.

import { Tensor } from '../graph.js';
import { conv2d, depthToSpace, pixelUnshuffle } from '../ops/conv.js';
import { mul } from '../ops/elementwise.js';
import { fusedMatmul } from '../ops/linalg.js';
import { reduceSum } from '../ops/norm.js';
import { concat, dimOf, pad, reshape, slice, transpose, unsqueeze } from '../ops/shape-ops.js';
import { GradContext, GradRule, constantValues, fail, gradOut, input, intAttr, intsAttr, staticShape, stringAttr } from './context.js';

interface ConvGeometry {
  batch: number;
  inChannels: number;
  outChannels: number;
  groups: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  /** [top, left, bottom, right] */
  pads: number[];
  height: number;
  width: number;
  outHeight: number;
  outWidth: number;
}

function geometry(ctx: GradContext): ConvGeometry {
  const x = input(ctx, 0);
  const w = input(ctx, 1);
  const [batch, inChannels, height, width] = staticShape(ctx, x);
  const [outChannels, , kh, kw] = staticShape(ctx, w);
  const [, , outHeight, outWidth] = staticShape(ctx, ctx.outputs[0]);
  const dilations = intsAttr(ctx, 'dilations', [1, 1]);
  if (dilations.some((d) => d !== 1)) fail(ctx, 'dilated convolutions are not supported');
  if (ctx.node.attributes.auto_pad !== undefined && ctx.node.attributes.auto_pad !== 'NOTSET') fail(ctx, 'auto_pad is not supported');
  const [sh, sw] = intsAttr(ctx, 'strides', [1, 1]);
  const pads = intsAttr(ctx, 'pads', [0, 0, 0, 0]);
  return { batch, inChannels, outChannels, groups: intAttr(ctx, 'group', 1), kh, kw, sh, sw, pads, height, width, outHeight, outWidth };
}

/** W [Cout, Cin/G, kh, kw] -> the kernel of the transposed conv, [Cin, Cout/G, kh, kw], flipped in space. */
function transposedKernel(w: Tensor, c: ConvGeometry): Tensor {
  const cog = c.outChannels / c.groups;
  const cig = c.inChannels / c.groups;
  let k = w;
  if (cog !== 1 || cig !== 1) {
    const grouped = reshape(w, [c.groups, cog, cig, c.kh, c.kw]); // [G, Cout/G, Cin/G, kh, kw]
    k = reshape(transpose(grouped, [0, 2, 1, 3, 4]), [c.inChannels, cog, c.kh, c.kw]); // [G, Cin/G, Cout/G, ...] -> [Cin, Cout/G, kh, kw]
  }
  if (c.kh === 1 && c.kw === 1) return k;
  return slice(k, [2, 3], [-1, -1], [-c.kh - 1, -c.kw - 1], [-1, -1]); // flipped [Cin, Cout/G, kh, kw]
}

function inputGrad(ctx: GradContext, gy: Tensor, w: Tensor, c: ConvGeometry): Tensor {
  const [pt, pl, pb, pr] = c.pads;
  const fits = pt <= c.kh - 1 && pb <= c.kh - 1 && pl <= c.kw - 1 && pr <= c.kw - 1;
  if (c.sh === 1 && c.sw === 1 && fits) {
    return conv2d(gy, transposedKernel(w, c), null, {
      pads: [c.kh - 1 - pt, c.kw - 1 - pl, c.kh - 1 - pb, c.kw - 1 - pr],
      groups: c.groups,
    });
  }
  const outputPadding = [
    c.height - (c.sh * (c.outHeight - 1) + c.kh - pt - pb),
    c.width - (c.sw * (c.outWidth - 1) + c.kw - pl - pr),
  ];
  if (outputPadding.some((p) => p < 0 || p >= Math.max(c.sh, c.sw))) fail(ctx, `no ConvTranspose restores the input size (output padding ${outputPadding})`);
  return gy.graph.node1('ConvTranspose', [gy, w], gy.dtype, [c.batch, c.inChannels, c.height, c.width], {
    kernel_shape: [c.kh, c.kw],
    strides: [c.sh, c.sw],
    pads: [...c.pads],
    dilations: [1, 1],
    group: c.groups,
    output_padding: outputPadding,
  });
}

/** dY [B, Cout, N] against one window of X [B, Cin, N] -> [Cout, Cin/G] (summed over the batch). */
function tapProduct(gy: Tensor, window: Tensor, c: ConvGeometry): Tensor {
  const n = c.outHeight * c.outWidth;
  const cog = c.outChannels / c.groups;
  const cig = c.inChannels / c.groups;
  if (c.groups === 1) {
    const prod = fusedMatmul(reshape(gy, [c.batch, c.outChannels, n]), reshape(window, [c.batch, c.inChannels, n]), { transB: true }); // [B, Cout, Cin]
    return reduceSum(prod, [0], false); // [Cout, Cin]
  }
  if (cog === 1 && cig === 1) return unsqueeze(reduceSum(mul(gy, window), [0, 2, 3], false), [1]); // depthwise: [C, 1]
  const gyG = reshape(gy, [c.batch, c.groups, cog, n]); // [B, G, Cout/G, N]
  const xG = reshape(window, [c.batch, c.groups, cig, n]); // [B, G, Cin/G, N]
  const prod = reduceSum(fusedMatmul(gyG, xG, { transB: true }), [0], false); // [G, Cout/G, Cin/G]
  return reshape(prod, [c.outChannels, cig]); // [Cout, Cin/G]
}

function weightGrad(gy: Tensor, x: Tensor, c: ConvGeometry): Tensor {
  const [pt, pl, pb, pr] = c.pads;
  const cig = c.inChannels / c.groups;
  const padded = pt || pl || pb || pr ? pad(x, [0, 0, pt, pl, 0, 0, pb, pr]) : x; // [B, Cin, H + pt + pb, W + pl + pr]
  const taps: Tensor[] = [];
  for (let i = 0; i < c.kh; i++) {
    for (let j = 0; j < c.kw; j++) {
      const whole = i === 0 && j === 0 && c.sh === 1 && c.sw === 1 && c.outHeight === c.height + pt + pb && c.outWidth === c.width + pl + pr;
      const window = whole
        ? padded
        : slice(padded, [2, 3], [i, j], [i + c.sh * (c.outHeight - 1) + 1, j + c.sw * (c.outWidth - 1) + 1], [c.sh, c.sw]); // [B, Cin, Ho, Wo]
      taps.push(unsqueeze(tapProduct(gy, window, c), [2])); // [Cout, Cin/G, 1]
    }
  }
  const stacked = taps.length === 1 ? taps[0] : concat(taps, 2); // [Cout, Cin/G, kh * kw]
  return reshape(stacked, [c.outChannels, cig, c.kh, c.kw]); // [Cout, Cin/G, kh, kw]
}

export const CONV_RULES: Readonly<Record<string, GradRule>> = {
  Conv: (ctx) => {
    const gy = gradOut(ctx);
    const x = input(ctx, 0);
    const w = input(ctx, 1);
    if (x.rank !== 4) fail(ctx, 'only 2-D convolutions are supported');
    const c = geometry(ctx);
    const b = ctx.inputs[2];
    return [
      ctx.needs[0] ? inputGrad(ctx, gy, w, c) : undefined,
      ctx.needs[1] ? weightGrad(gy, x, c) : undefined,
      b && ctx.needs[2] ? reduceSum(gy, [0, 2, 3], false) : undefined,
    ];
  },
  Resize: (ctx) => {
    const x = input(ctx, 0);
    const mode = stringAttr(ctx, 'mode', 'nearest');
    const transform = stringAttr(ctx, 'coordinate_transformation_mode', 'half_pixel');
    const rounding = stringAttr(ctx, 'nearest_mode', 'round_prefer_floor');
    if (mode !== 'nearest' || transform !== 'asymmetric' || rounding !== 'floor') {
      fail(ctx, `only nearest up-sampling (asymmetric, floor) is supported, got ${mode}/${transform}/${rounding}`);
    }
    const scales = constantValues(ctx, 2);
    const [sb, sc, f, f2] = scales;
    if (x.rank !== 4 || sb !== 1 || sc !== 1 || f !== f2 || !Number.isInteger(f)) fail(ctx, `scales ${scales} are not an integer 2-D up-sampling`);
    // each input pixel was copied to an f x f block: its gradient is the block's sum
    const blocks = reshape(gradOut(ctx), [dimOf(x, 0), dimOf(x, 1), dimOf(x, 2), f, dimOf(x, 3), f]); // [B, C, H, f, W, f]
    return [reduceSum(blocks, [3, 5], false), undefined, undefined];
  },
  DepthToSpace: (ctx) => {
    const r = intAttr(ctx, 'blocksize', 0);
    const mode = stringAttr(ctx, 'mode', 'DCR');
    const gy = gradOut(ctx);
    const gx = mode === 'CRD' ? pixelUnshuffle(gy, r) : spaceToDepth(gy, r);
    return [gx];
  },
  SpaceToDepth: (ctx) => [depthToSpace(gradOut(ctx), intAttr(ctx, 'blocksize', 0), 'DCR')],
};

/** ONNX SpaceToDepth, the inverse of DepthToSpace in DCR mode. */
function spaceToDepth(x: Tensor, r: number): Tensor {
  const [b, c, h, w] = x.shape;
  const down = (d: typeof h) => (typeof d === 'number' ? d / r : `${d}/${r}`);
  return x.graph.node1('SpaceToDepth', [x], x.dtype, [b, typeof c === 'number' ? c * r * r : `${c}*${r * r}`, down(h), down(w)], { blocksize: r });
}
