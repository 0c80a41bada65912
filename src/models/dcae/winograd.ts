// A 3x3, stride-1, zero-padded convolution computed as Winograd F(4x4, 3x3): 4x fewer multiply-adds in the
// channel-mixing products, which run as one batched MatMul, at the cost of transforms that mostly move memory. Worth
// it where channels are many (DC-AE's 256- and 512-channel stages); with 128 channels on 512 x 512 maps the
// transforms cost what the products save. ref: SANA.md §3.2 (ResBlock); Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks" (2015), F(4x4, 3x3) with interpolation points 0, ±1, ±2, ∞.
//
// For each 6x6 input tile d (stride 4) and each output/input channel pair with 3x3 kernel k:
//   Y (4x4) = A^T [ (G k G^T) ⊙ (B^T d B) ] A
// B^T d B is separable: a depthwise 6x1 conv of stride 4 with 6 outputs per channel (the rows), then a depthwise 1x6
// conv of stride 4 with 6 outputs per row map, giving the 36 transformed maps of each channel. The 36 products
// U_k V_k sum over input channels: one MatMul batched over k (U = G k G^T is folded from the weights when the session
// is created). A^T M A maps the 36 products of each tile to its 16 outputs: a [16, 36] MatMul, then DepthToSpace.

import { Tensor } from '../../graph/graph.js';
import { add } from '../../graph/ops/elementwise.js';
import { conv2d, depthToSpace } from '../../graph/ops/conv.js';
import { matmul } from '../../graph/ops/linalg.js';
import { dimOf, divDim, reshape, transpose } from '../../graph/ops/shape-ops.js';
import { HostTensor } from '../../io/host-tensor.js';
import { channelsOf } from './layers.js';

/**
 * ResBlocks with at least this many channels use Winograd. Measured on the f32c32 decoder at 512 px (2 cores, one
 * ResBlock's two convs, variants alternating in one process): 2.4x faster than the direct conv with 512 channels on
 * 128 x 128 maps, 1.4x with 256 channels on 256 x 256, 0.95x with 128 channels on 512 x 512.
 */
export const WINOGRAD_MIN_CHANNELS = 256;

/** Output tile side m and input tile side m + 2 of F(4x4, 3x3). */
const TILE = 4;
const INPUT_TILE = TILE + 2;

/**
 * Whether the ResBlocks of stage `stage` (of `stages`) with `channels` channels use Winograd. Stage i of the encoder
 * works at H / 2^i (H a multiple of 2^(stages - 1)) and of the decoder at h * 2^(stages - 1 - i): map sides that are
 * multiples of 4, as F(4x4, 3x3) needs, in every stage but the last two.
 */
export function stageUsesWinograd(stage: number, stages: number, channels: number, minChannels = WINOGRAD_MIN_CHANNELS): boolean {
  return stage < stages - 2 && channels >= minChannels;
}

/**
 * Whether the decoder's up-block into stage `stage` (output `channels` wide) runs as Winograd. It reads stage
 * `stage + 1`'s map, whose sides are multiples of 4 below the last two stages. With 128 output channels (512 x 512
 * output at 512 px) the direct phase convs are as fast, so the same channel threshold applies.
 */
export function upBlockUsesWinograd(stage: number, stages: number, channels: number, minChannels = WINOGRAD_MIN_CHANNELS): boolean {
  return stage + 1 < stages - 2 && channels >= minChannels;
}

/** B^T: input-transform coefficients over the 6 tile positions. */
const INPUT_TRANSFORM = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];

const INPUT_TRANSFORM_TAPS = INPUT_TRANSFORM.flat();

/** G: kernel transform, 6 x 3. */
const KERNEL_TRANSFORM = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];

/** A^T: output transform, 4 x 6. */
const OUTPUT_TRANSFORM = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 0],
  [0, 1, 1, 4, 4, 0],
  [0, 1, -1, 8, -8, 1],
];

/**
 * conv2d(x, weight, bias, padding 1) for a [out, in, 3, 3] weight; x [B, in, H, W] with H and W multiples of 4.
 */
export function winogradConv3x3(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const g = x.graph;
  const channels = channelsOf(x);
  const [outChannels, inChannels, kh, kw] = weight.shape;
  if (inChannels !== channels || kh !== 3 || kw !== 3 || typeof outChannels !== 'number') {
    throw new Error(`winogradConv3x3: weight [${weight.shape.join(', ')}] must be [out, ${channels}, 3, 3]`);
  }
  for (const d of [x.shape[2], x.shape[3]]) {
    if (typeof d === 'number' && d % TILE !== 0) throw new Error(`winogradConv3x3: spatial size ${d} must be a multiple of ${TILE}`);
  }
  const batch = dimOf(x, 0);
  const tileRows = divDim(dimOf(x, 2), TILE);
  const tileCols = divDim(dimOf(x, 3), TILE);

  // Input transform. The tile of output rows 4i .. 4i + 3 reads input rows 4i - 1 .. 4i + 4 (one zero row above
  // the first tile and below the last). Row map c * 6 + a holds row combination a of channel c; tile map
  // (c * 6 + a) * 6 + b applies column combination b to it.
  // One depthwise kernel with B^T's 6 rows as the 6 outputs of each group, laid along a column or a row.
  const transformKernel = (groups: number, shape: [number, number]): Tensor => {
    const k = new Float32Array(groups * INPUT_TILE * INPUT_TILE);
    for (let group = 0; group < groups; group++) k.set(INPUT_TRANSFORM_TAPS, group * INPUT_TILE * INPUT_TILE);
    return g.constant(HostTensor.float32([INPUT_TILE * groups, 1, ...shape], k));
  };
  const rows = conv2d(x, transformKernel(channels, [INPUT_TILE, 1]), null, {
    stride: [TILE, 1],
    pads: [1, 0, 1, 0],
    groups: channels,
  }); // [B, 6C, H/4, W]
  const tiles = conv2d(rows, transformKernel(INPUT_TILE * channels, [1, INPUT_TILE]), null, {
    stride: [1, TILE],
    pads: [0, 1, 0, 1],
    groups: INPUT_TILE * channels,
  }); // [B, 36C, H/4, W/4], channel-major
  const v = transpose(reshape(tiles, [batch, channels, 36, -1]), [0, 2, 1, 3]); // [B, C, 36, T] -> [B, 36, C, T]

  // Kernel transform U = G k G^T: [out, in, 3, 3] -> [6, 6, out, in] -> [36, out, in].
  const gMatrix = g.floats([INPUT_TILE, 3], KERNEL_TRANSFORM.flat());
  const gTransposed = g.floats([3, INPUT_TILE], [0, 1, 2].flatMap((a) => KERNEL_TRANSFORM.map((row) => row[a])));
  const u = reshape(transpose(matmul(matmul(gMatrix, weight), gTransposed), [2, 3, 0, 1]), [36, outChannels, channels]); // [out, in, 6, 6] -> [36, out, in]
  const products = matmul(u, v); // [B, 36, out, T]

  // Output transform: output phase (p, q) of a tile = sum over (k1, k2) of A^T[p][k1] A^T[q][k2] M_(k1, k2).
  const outputTransform = new Float32Array(TILE * TILE * 36);
  for (let p = 0; p < TILE; p++) {
    for (let q = 0; q < TILE; q++) {
      for (let k = 0; k < 36; k++) {
        outputTransform[(p * TILE + q) * 36 + k] = OUTPUT_TRANSFORM[p][Math.floor(k / INPUT_TILE)] * OUTPUT_TRANSFORM[q][k % INPUT_TILE];
      }
    }
  }
  const phases = matmul(g.floats([TILE * TILE, 36], outputTransform), reshape(products, [batch, 36, -1])); // [B, 36, out * T] -> [B, 16, out * T]
  let y = reshape(phases, [batch, TILE * TILE, outChannels, -1]); // [B, 16, out, T]
  if (bias) y = add(y, reshape(bias, [outChannels, 1])); // bias as [out, 1]
  // Phase-major channels (row phase, column phase, channel) -> [B, out, H, W].
  return depthToSpace(reshape(y, [batch, TILE * TILE * outChannels, tileRows, tileCols]), TILE, 'DCR'); // [B, 16 * out, H/4, W/4]
}
