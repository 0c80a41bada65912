// Convolutions (dense, grouped, depthwise, strided), nearest resize and pixel (un)shuffle on NCHW tensors.

import { Tensor } from '../graph.js';
import { Dim, dimsCompatible } from '../shape.js';
import { describe, expectFloat, expectRank, expectSameDtype } from './check.js';
import { dimOf, divDim, reshape, transpose } from './shape-ops.js';

export interface ConvOptions {
  /** One stride for both axes, or [height, width]. */
  stride?: number | readonly [number, number];
  padding?: number;
  /** Asymmetric zero padding [top, left, bottom, right] (ONNX order); overrides `padding`. */
  pads?: readonly [number, number, number, number];
  groups?: number;
  dilation?: number;
}

/** Output size along one axis; `padTotal` = padding before + after. */
function convOut(d: Dim, k: number, stride: number, padTotal: number, dilation: number): Dim {
  if (typeof d !== 'number') {
    if (stride === 1 && padTotal === dilation * (k - 1)) return d;
    return stride === 1 ? `${d}+${padTotal - dilation * (k - 1)}` : `conv(${d})/${stride}`;
  }
  return Math.floor((d + padTotal - dilation * (k - 1) - 1) / stride) + 1;
}

/** 2-D convolution, PyTorch semantics: weight [out, in/groups, kh, kw], zero padding (symmetric unless `pads`). */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, opts: ConvOptions = {}): Tensor {
  const op = 'Conv';
  expectRank(op, x, 4);
  expectRank(op, weight, 4);
  expectFloat(op, x);
  expectSameDtype(op, x, weight, ...(bias ? [bias] : []));
  const [strideH, strideW] = typeof opts.stride === 'object' ? opts.stride : [opts.stride ?? 1, opts.stride ?? 1];
  const padding = opts.padding ?? 0;
  const pads = opts.pads ?? [padding, padding, padding, padding];
  const groups = opts.groups ?? 1;
  const dilation = opts.dilation ?? 1;
  const [outC, inPerGroup, kh, kw] = weight.shape;
  if (typeof kh !== 'number' || typeof kw !== 'number' || typeof outC !== 'number' || typeof inPerGroup !== 'number') {
    throw new Error(`${op}: weight ${describe(weight)} must have a static shape`);
  }
  const c = x.shape[1];
  if (!dimsCompatible(c, inPerGroup * groups)) {
    throw new Error(`${op}: input ${describe(x)} has ${c} channels; weight ${describe(weight)} with groups=${groups} expects ${inPerGroup * groups}`);
  }
  if (outC % groups !== 0) throw new Error(`${op}: ${outC} output channels are not divisible by groups=${groups}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outC)) throw new Error(`${op}: bias ${describe(bias)} must be [${outC}]`);
  const shape = [x.shape[0], outC, convOut(x.shape[2], kh, strideH, pads[0] + pads[2], dilation), convOut(x.shape[3], kw, strideW, pads[1] + pads[3], dilation)];
  return x.graph.node1(op, bias ? [x, weight, bias] : [x, weight], x.dtype, shape, {
    kernel_shape: [kh, kw],
    strides: [strideH, strideW],
    pads: [...pads],
    dilations: [dilation, dilation],
    group: groups,
  });
}

/** Nearest-neighbour upsampling by an integer factor (PyTorch `interpolate(mode="nearest")`). */
export function upsampleNearest(x: Tensor, factor: number): Tensor {
  expectRank('Resize', x, 4);
  const g = x.graph;
  const scale = (d: Dim): Dim => (typeof d === 'number' ? d * factor : `${d}*${factor}`);
  return g.node1(
    'Resize',
    [x, null, g.floats([4], [1, 1, factor, factor])],
    x.dtype,
    [x.shape[0], x.shape[1], scale(x.shape[2]), scale(x.shape[3])],
    { mode: 'nearest', nearest_mode: 'floor', coordinate_transformation_mode: 'asymmetric' },
  );
}

/** torch.pixel_shuffle: out[c, r*y+i, r*x+j] = in[c*r*r + i*r + j, y, x] (ONNX DepthToSpace, mode CRD). */
export function pixelShuffle(x: Tensor, r: number): Tensor {
  return depthToSpace(x, r, 'CRD');
}

/**
 * ONNX DepthToSpace. CRD: out[c, r*y+i, r*x+j] = in[c*r*r + i*r + j, y, x]; DCR: out[c, r*y+i, r*x+j] =
 * in[(i*r + j)*C + c, y, x] (the r*r sub-pixel phases stacked as channel blocks).
 */
export function depthToSpace(x: Tensor, r: number, mode: 'CRD' | 'DCR'): Tensor {
  expectRank('DepthToSpace', x, 4);
  const [b, c, h, w] = x.shape;
  if (typeof c === 'number' && c % (r * r) !== 0) throw new Error(`pixelShuffle: ${describe(x)} channels not divisible by ${r * r}`);
  const up = (d: Dim): Dim => (typeof d === 'number' ? d * r : `${d}*${r}`);
  return x.graph.node1('DepthToSpace', [x], x.dtype, [b, typeof c === 'number' ? c / (r * r) : `${c}/${r * r}`, up(h), up(w)], {
    blocksize: r,
    mode,
  });
}

/**
 * torch.pixel_unshuffle: out[c*r*r + i*r + j, y, x] = in[c, r*y+i, r*x+j]. ONNX SpaceToDepth orders channels
 * differently (block offset first), so this is a reshape/transpose.
 */
export function pixelUnshuffle(x: Tensor, r: number): Tensor {
  expectRank('pixelUnshuffle', x, 4);
  const c = x.shape[1];
  if (typeof c !== 'number') throw new Error(`pixelUnshuffle: ${describe(x)} needs a static channel count`);
  const b = dimOf(x, 0);
  const h = divDim(dimOf(x, 2), r);
  const w = divDim(dimOf(x, 3), r);
  const split = reshape(x, [b, c, h, r, w, r]); // [B, C, H/r, r, W/r, r]
  const moved = transpose(split, [0, 1, 3, 5, 2, 4]); // [B, C, r, r, H/r, W/r]
  return reshape(moved, [b, c * r * r, h, w]); // [B, C*r*r, H/r, W/r]
}

