// The DC-AE autoencoder's reconstruction objective as one graph: latent = encoder(image), recon = decoder(latent),
// loss = mean(|recon - image|) + mean((recon - image)^2), then the gradient of every encoder and decoder weight.
// Optionally an edge term, edgeWeight * (mean |dx(recon - image)| + mean |dy(recon - image)|) with dx, dy the
// differences of neighbouring pixels: L1 + L2 barely charge a rounded corner (a few dozen pixels of a crop), so a
// decoder trained on them draws small diamonds as circles; the edge term charges every pixel of a blurred or
// misplaced edge. Our choice of perceptual term (issue "Training on our engine", trainer a); 0 leaves it out.
// Training uses the direct convolutions (no Winograd): same function, simpler backward pass. Static shapes.
// ref: SANA.md §3; ../shared/fixtures/README.md "DC-AE objective"

import { Graph } from '../graph/graph.js';
import { abs, add, mul, sub } from '../graph/ops/elementwise.js';
import { reduceMean } from '../graph/ops/norm.js';
import { slice } from '../graph/ops/shape-ops.js';
import type { Tensor } from '../graph/graph.js';
import { WeightStore } from '../io/weights.js';
import { DcaeConfig } from '../models/dcae/config.js';
import { buildDecoder } from '../models/dcae/decoder.js';
import { buildEncoder } from '../models/dcae/encoder.js';
import { WeightBinder } from '../nn/weight-binder.js';
import { TrainableGraph, addLossAndGradients } from './train-graph.js';

export interface ImageBatchShape {
  readonly batch: number;
  readonly height: number;
  readonly width: number;
}

export const RECON_INPUTS = { image: 'image' } as const;
export const RECON_OUTPUT = 'recon';
export const LATENT_OUTPUT = 'latent';

/** Which weights the objective differentiates: all of them, or the decoder's alone (the encoder frozen). */
export type DcaeTrainablePart = 'all' | 'decoder';

/** Checkpoint keys of the decoder (diffusers AutoencoderDC names). */
export const isDecoderKey = (key: string): boolean => key.startsWith('decoder.');

export interface DcaeObjectiveOptions {
  /** Default 'all'. */
  readonly trainable?: DcaeTrainablePart;
  /** Weight of the edge term (see the header); default 0. */
  readonly edgeWeight?: number;
}

/** mean |x[..., 1:] - x[..., :-1]| along `axis` of an NCHW tensor. */
function meanAbsDifference(x: Tensor, axis: 2 | 3): Tensor {
  const n = x.shape[axis] as number;
  const next = slice(x, [axis], [1], [n]); // [B, C, H-1, W] or [B, C, H, W-1]
  const previous = slice(x, [axis], [0], [n - 1]);
  return reduceMean(abs(sub(next, previous)), [0, 1, 2, 3], false);
}

export function buildDcaeReconstructionGraph(config: DcaeConfig, store: WeightStore, shape: ImageBatchShape, options: DcaeObjectiveOptions = {}): TrainableGraph {
  const trainable = options.trainable ?? 'all';
  const edgeWeight = options.edgeWeight ?? 0;
  if (!(edgeWeight >= 0) || !Number.isFinite(edgeWeight)) throw new Error(`edge loss weight must be a finite number >= 0, got ${edgeWeight}`);
  const r = config.spatialCompressionRatio;
  if (shape.height % r || shape.width % r) throw new Error(`image ${shape.height} x ${shape.width} is not a multiple of the compression ${r}`);
  const g = new Graph('dcae_reconstruction_step');
  // A frozen encoder stays external data: no gradient is taken for it and nothing is fed for it each step.
  const asInputs = trainable === 'decoder' ? isDecoderKey : true;
  const binder = new WeightBinder(g, store, { asInputs, ignore: (name) => name.endsWith('.num_batches_tracked') });
  const image = g.input(RECON_INPUTS.image, 'float32', [shape.batch, config.inChannels, shape.height, shape.width]);
  const latent = buildEncoder(binder, config, image, undefined, Infinity);
  const recon = buildDecoder(binder, config, latent, undefined, Infinity);
  const diff = sub(recon, image);
  const all = [0, 1, 2, 3];
  const pixelLoss = add(reduceMean(abs(diff), all, false), reduceMean(mul(diff, diff), all, false));
  const loss = edgeWeight > 0 ? add(pixelLoss, mul(add(meanAbsDifference(diff, 2), meanAbsDifference(diff, 3)), g.scalar(edgeWeight))) : pixelLoss;
  binder.finish(`AutoencoderDC training graph (${store.source})`);
  g.output(recon, RECON_OUTPUT);
  g.output(latent, LATENT_OUTPUT);
  addLossAndGradients(g, loss, binder.parameters());
  return { graph: g, params: binder.parameters() };
}
