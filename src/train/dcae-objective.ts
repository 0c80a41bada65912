// The DC-AE autoencoder's reconstruction objective as one graph: latent = encoder(image), recon = decoder(latent),
// loss = mean(|recon - image|) + mean((recon - image)^2), then the gradient of every encoder and decoder weight.
// Training uses the direct convolutions (no Winograd): same function, simpler backward pass. Static shapes.
// ref: SANA.md §3; ../shared/fixtures/README.md "DC-AE objective"

import { Graph } from '../graph/graph.js';
import { abs, add, mul, sub } from '../graph/ops/elementwise.js';
import { reduceMean } from '../graph/ops/norm.js';
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

export function buildDcaeReconstructionGraph(config: DcaeConfig, store: WeightStore, shape: ImageBatchShape): TrainableGraph {
  const r = config.spatialCompressionRatio;
  if (shape.height % r || shape.width % r) throw new Error(`image ${shape.height} x ${shape.width} is not a multiple of the compression ${r}`);
  const g = new Graph('dcae_reconstruction_step');
  const binder = new WeightBinder(g, store, { asInputs: true, ignore: (name) => name.endsWith('.num_batches_tracked') });
  const image = g.input(RECON_INPUTS.image, 'float32', [shape.batch, config.inChannels, shape.height, shape.width]);
  const latent = buildEncoder(binder, config, image, undefined, Infinity);
  const recon = buildDecoder(binder, config, latent, undefined, Infinity);
  const diff = sub(recon, image);
  const all = [0, 1, 2, 3];
  const loss = add(reduceMean(abs(diff), all, false), reduceMean(mul(diff, diff), all, false));
  binder.finish(`AutoencoderDC training graph (${store.source})`);
  g.output(recon, RECON_OUTPUT);
  g.output(latent, LATENT_OUTPUT);
  addLossAndGradients(g, loss, binder.parameters());
  return { graph: g, params: binder.parameters() };
}
