// A 3x3, stride-1, zero-padded convolution computed as Winograd F(2x2, 3x3) out of ONNX Runtime's fast blocked-layout
// ops: 2.25x fewer multiply-adds in the channel-mixing products, at the cost of transforms that only read and write
// memory. Worth it where channels are many and maps small (DC-AE's 512-channel ResBlocks); with few channels and large
// maps the transforms cost more than they save. ref: SANA.md §3.2 (ResBlock); Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks" (2015).
//
// For each 4x4 input tile d (stride 2) and each output/input channel pair with kernel g:
//   Y (2x2) = A^T [ (G g G^T) ⊙ (B^T d B) ] A
// The input transform B^T d B is separable: four strided depthwise 4x1 convs (rows), then four 1x4 on each (columns),
// giving 16 maps V_k of half resolution. Each product U_k V_k over channels is a 1x1 conv (U_k = G g G^T at k, folded
// from the weights when the session is created). The output transform A^T M A adds and subtracts the 16 results into
// the four output phases, which DepthToSpace interleaves.

import { Tensor } from '../../graph/graph.js';
import { add, sub } from '../../graph/ops/elementwise.js';
import { conv2d, depthToSpace } from '../../graph/ops/conv.js';
import { matmul } from '../../graph/ops/linalg.js';
import { concat, reshape, slice, transpose } from '../../graph/ops/shape-ops.js';
import { HostTensor } from '../../io/host-tensor.js';
import { channelsOf } from './layers.js';

/**
 * ResBlocks with at least this many channels use Winograd. Measured on the f32c32 decoder at 512 px (2 cores, decoders
 * alternating in one process): the 512-channel stage gains, the 256-channel stage about breaks even and the
 * 128-channel stage (512 x 512 maps) loses 19%.
 */
export const WINOGRAD_MIN_CHANNELS = 512;

/**
 * Whether the ResBlocks of stage `stage` (of `stages`) with `channels` channels use Winograd. Stage i of the encoder
 * works at H / 2^i and of the decoder at h * 2^(stages - 1 - i): even sides in every stage but the last
 * (latent-sized) one, which Winograd F(2x2, 3x3) needs.
 */
export function stageUsesWinograd(stage: number, stages: number, channels: number, minChannels = WINOGRAD_MIN_CHANNELS): boolean {
  return stage < stages - 1 && channels >= minChannels;
}

/** Rows of B^T: input-transform coefficients over the 4 tile positions. */
const INPUT_TRANSFORM = [
  [1, 0, -1, 0],
  [0, 1, 1, 0],
  [0, -1, 1, 0],
  [0, 1, 0, -1],
];

/** G: kernel transform, 4 x 3. */
const KERNEL_TRANSFORM = [
  [1, 0, 0],
  [0.5, 0.5, 0.5],
  [0.5, -0.5, 0.5],
  [0, 0, 1],
];

/**
 * conv2d(x, weight, bias, padding 1) for a [out, in, 3, 3] weight; x [B, in, H, W] with H and W even.
 */
export function winogradConv3x3(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const g = x.graph;
  const channels = channelsOf(x);
  const [outChannels, inChannels, kh, kw] = weight.shape;
  if (inChannels !== channels || kh !== 3 || kw !== 3 || typeof outChannels !== 'number') {
    throw new Error(`winogradConv3x3: weight [${weight.shape.join(', ')}] must be [out, ${channels}, 3, 3]`);
  }
  for (const d of [x.shape[2], x.shape[3]]) {
    if (typeof d === 'number' && d % 2 !== 0) throw new Error(`winogradConv3x3: spatial size ${d} must be even`);
  }

  // Input transform. A tile starting at input row 2i - 1 (zero padding above) covers rows 2i - 1 .. 2i + 2.
  const depthwise = (coefficients: number[], vertical: boolean): Tensor => {
    const k = new Float32Array(channels * 4);
    for (let c = 0; c < channels; c++) k.set(coefficients, 4 * c);
    return g.constant(HostTensor.float32(vertical ? [channels, 1, 4, 1] : [channels, 1, 1, 4], k));
  };
  const rows = INPUT_TRANSFORM.map((b) => conv2d(x, depthwise(b, true), null, { stride: [2, 1], pads: [1, 0, 1, 0], groups: channels })); // [B, C, H/2, W]
  const tiles = rows.map((r) =>
    INPUT_TRANSFORM.map((b) => conv2d(r, depthwise(b, false), null, { stride: [1, 2], pads: [0, 1, 0, 1], groups: channels })), // [B, C, H/2, W/2]
  );

  // Kernel transform U = G g G^T: [out, in, 3, 3] -> [4, 4, out, in], one [out, in, 1, 1] product kernel per (k1, k2).
  const gMatrix = g.floats([4, 3], KERNEL_TRANSFORM.flat());
  const gTransposed = g.floats([3, 4], [0, 1, 2].flatMap((a) => KERNEL_TRANSFORM.map((row) => row[a])));
  const u = transpose(matmul(matmul(gMatrix, weight), gTransposed), [2, 3, 0, 1]); // [out, in, 4, 4] -> [4, 4, out, in]
  const products = tiles.map((row, k1) =>
    row.map((v, k2) => {
      const kernel = reshape(slice(u, [0, 1], [k1, k2], [k1 + 1, k2 + 1]), [outChannels, channels, 1, 1]); // [1, 1, out, in] -> [out, in, 1, 1]
      // M_11 enters every output phase with weight +1 (A^T column 1 is [1, 1]), so it carries the bias.
      return conv2d(v, kernel, k1 === 1 && k2 === 1 ? bias : null); // [B, out, H/2, W/2]
    }),
  );

  // Output transform with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]], first over k2 (columns) then over k1 (rows).
  const byColumn = products.map((m) => [add(add(m[0], m[1]), m[2]), sub(sub(m[1], m[2]), m[3])]);
  const phase = (b: 0 | 1): [Tensor, Tensor] => [
    add(add(byColumn[0][b], byColumn[1][b]), byColumn[2][b]),
    sub(sub(byColumn[1][b], byColumn[2][b]), byColumn[3][b]),
  ];
  const [y00, y10] = phase(0);
  const [y01, y11] = phase(1);
  // Phase-major channels (row phase, column phase, channel) -> [B, out, H, W].
  return depthToSpace(concat([y00, y01, y10, y11], 1), 2, 'DCR');
}
