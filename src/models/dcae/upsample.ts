// DCUpBlock2d of the "interpolate" type, computed on the low-resolution map. ref: SANA.md §3.2 (Upsample block)
//
// conv3x3(nearest_up2(x)) reads, for output row 2y + i, up-sampled rows 2y + i - 1 .. 2y + i + 1, i.e. input rows
// {y - 1, y, y} (i = 0) or {y, y, y + 1} (i = 1). So each of the four output phases (i, j) is a 2x2 convolution of
// x whose taps are sums of the 3x3 taps, with the window shifted by the phase. Same result up to float rounding,
// 4/9 of the multiply-adds, and no 4x up-sampled copy of the input. With `winograd` the four phases run as one 3x3
// Winograd F(4x4, 3x3) conv (their kernels placed in a 3x3 window): 1/4 of the reference's multiply-adds. The shortcut
// pixel_shuffle(repeat_interleave(x, R)) copies input channel floor((4o + 2i + j) / R) into output channel o of
// phase (i, j) at the window's centre tap, so it folds into the phase kernels as a one-hot term.

import { Tensor } from '../../graph/graph.js';
import { add, equal } from '../../graph/ops/elementwise.js';
import { conv2d, depthToSpace } from '../../graph/ops/conv.js';
import { matmul } from '../../graph/ops/linalg.js';
import { cast, concat, pad, reshape } from '../../graph/ops/shape-ops.js';
import { HostTensor } from '../../io/host-tensor.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { channelsOf } from './layers.js';
import { winogradConv3x3 } from './winograd.js';

/** Rows of the 2-tap kernel of phase 0 and 1 as sums of the 3 taps of the up-sampled kernel. */
const PHASE_TAPS = [
  [1, 0, 0, 0, 1, 1], // phase 0: input offsets -1 <- tap 0; 0 <- taps 1 + 2
  [1, 1, 0, 0, 0, 1], // phase 1: input offsets 0 <- taps 0 + 1; +1 <- tap 2
];

export function interpolateUpsampleConv(
  w: WeightBinder,
  prefix: string,
  x: Tensor,
  outChannels: number,
  shortcut: boolean,
  winograd = false,
): Tensor {
  const g = x.graph;
  const inChannels = channelsOf(x);
  const weight = w.get(`${prefix}.conv.weight`, [outChannels, inChannels, 3, 3]);
  const bias = w.get(`${prefix}.conv.bias`, [outChannels]);
  const repeats = (4 * outChannels) / inChannels;
  const phaseKernels: Tensor[] = [];
  for (const i of [0, 1]) {
    const rows = matmul(g.floats([2, 3], PHASE_TAPS[i]), weight); // [out, in, 2, 3]
    for (const j of [0, 1]) {
      const colsT = [0, 1, 2].flatMap((t) => [PHASE_TAPS[j][t], PHASE_TAPS[j][3 + t]]); // PHASE_TAPS[j] transposed
      const kernel = matmul(rows, g.floats([3, 2], colsT)); // [out, in, 2, 2]
      phaseKernels.push(shortcut ? add(kernel, shortcutKernel(x, outChannels, repeats, i, j)) : kernel);
    }
  }
  let phases: Tensor; // [B, 4 * out, H, W], phase-major
  if (winograd) {
    // Phase (i, j) reads window rows y - 1 + i .. y + i: rows i .. i + 1 of the 3x3 window around y. All four phases
    // as one 3x3 conv to 4 * out channels share one Winograd input transform: 36 products per 4x4 tile instead of
    // the phase convs' 64 taps.
    const window = phaseKernels.map((k, p) => pad(k, [0, 0, p >> 1, p & 1, 0, 0, 1 - (p >> 1), 1 - (p & 1)])); // [out, in, 3, 3]
    phases = winogradConv3x3(x, concat(window, 0), concat([bias, bias, bias, bias], 0)); // weight [4 * out, in, 3, 3]
  } else {
    // Pad one row on top for phase 0, at the bottom for phase 1 (same for columns).
    phases = concat(
      phaseKernels.map((k, p) => conv2d(x, k, bias, { pads: [1 - (p >> 1), 1 - (p & 1), p >> 1, p & 1] })), // [B, out, H, W] each
      1,
    );
  }
  return depthToSpace(phases, 2, 'DCR'); // [B, 4 * out, H, W] (phase-major) -> [B, out, 2H, 2W]
}

/** One-hot [out, in, 2, 2]: 1 at (o, floor((4o + 2i + j) / repeats)) on the tap that reads input pixel (y, x). */
function shortcutKernel(x: Tensor, outChannels: number, repeats: number, i: number, j: number): Tensor {
  const g = x.graph;
  const inChannels = channelsOf(x);
  const source = Array.from({ length: outChannels }, (_, o) => Math.floor((4 * o + 2 * i + j) / repeats));
  const src = g.constant(HostTensor.int64([outChannels, 1], source), 'shortcut_source'); // [out, 1]
  const channels = g.constant(HostTensor.int64([1, inChannels], Array.from({ length: inChannels }, (_, c) => c)), 'channel_index'); // [1, in]
  const oneHot = reshape(cast(equal(src, channels), 'float32'), [outChannels, inChannels, 1, 1]); // [out, in, 1, 1]
  const centreRow = 1 - i; // phase 0's window is rows (y - 1, y): the centre is its second tap
  const centreCol = 1 - j;
  return pad(oneHot, [0, 0, centreRow, centreCol, 0, 0, 1 - centreRow, 1 - centreCol]); // [out, in, 2, 2]
}
