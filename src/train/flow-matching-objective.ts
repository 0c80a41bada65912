// SANA's rectified-flow training objective as one graph: x_t = (1 - sigma) x0 + sigma noise, the transformer's
// velocity prediction at timestep 1000 sigma, and loss = mean((prediction - (noise - x0))^2) over every element;
// then the gradient of every transformer weight. The caption side (projection, norm, cross-attention keys and
// values) is in the same graph, so its weights train too. Shapes are static: one graph per batch geometry.
// ref: SANA.md §6; ../shared/fixtures/README.md "Transformer objective"

import { Graph } from '../graph/graph.js';
import { add, mul, sub } from '../graph/ops/elementwise.js';
import { reduceMean } from '../graph/ops/norm.js';
import { reshape } from '../graph/ops/shape-ops.js';
import { WeightStore } from '../io/weights.js';
import { SanaTransformerConfig } from '../models/sana/config.js';
import { sincosPositionTable } from '../models/sana/embeddings.js';
import { captionSide, denoiseSide } from '../models/sana/graphs.js';
import { TrainableLora } from '../nn/lora-trainable.js';
import { WeightBinder } from '../nn/weight-binder.js';
import { TrainableGraph, addLossAndGradients } from './train-graph.js';

export interface FlowBatchShape {
  readonly batch: number;
  /** Latent height and width. */
  readonly height: number;
  readonly width: number;
  /** Caption tokens per row. */
  readonly tokens: number;
}

/** Graph input names of the objective (the weights are inputs too, named by checkpoint key). */
export const FLOW_INPUTS = {
  x0: 'x0',
  noise: 'noise',
  sigmas: 'sigmas',
  caption: 'encoder_hidden_states',
  mask: 'encoder_attention_mask',
} as const;
export const PREDICTION_OUTPUT = 'prediction';

/**
 * The objective with every transformer weight trainable, or, with `lora`, only the LoRA adapters of its targeted
 * layers (the checkpoint's weights then stay frozen external data in the session).
 */
export function buildFlowMatchingGraph(
  config: SanaTransformerConfig,
  store: WeightStore,
  shape: FlowBatchShape,
  options: { lora?: TrainableLora } = {},
): TrainableGraph {
  const { batch: b, height: h, width: w, tokens } = shape;
  const c = config.inChannels;
  if (config.guidanceEmbeds) throw new Error('training guidance-embedding (Sprint) transformers is not supported');
  if (h % config.patchSize || w % config.patchSize) throw new Error(`latent ${h} x ${w} is not a multiple of patch_size ${config.patchSize}`);
  const g = new Graph('sana_flow_matching_step');
  const binder = new WeightBinder(g, store, options.lora ? { trainableLora: options.lora } : { asInputs: true });
  const x0 = g.input(FLOW_INPUTS.x0, 'float32', [b, c, h, w]);
  const noise = g.input(FLOW_INPUTS.noise, 'float32', [b, c, h, w]);
  const sigmas = g.input(FLOW_INPUTS.sigmas, 'float32', [b]);
  const caption = g.input(FLOW_INPUTS.caption, 'float32', [b, tokens, config.captionChannels]);
  const mask = g.input(FLOW_INPUTS.mask, 'int64', [b, tokens]);

  const sigma = reshape(sigmas, [b, 1, 1, 1]); // [B, 1, 1, 1]
  const noisy = add(mul(sub(1, sigma), x0), mul(sigma, noise)); // x_t
  const timestep = mul(sigmas, 1000);
  const side = captionSide(binder, config, caption, mask);
  const positions =
    config.interpolationScale !== undefined
      ? g.constant(sincosPositionTable(config, h / config.patchSize, w / config.patchSize), 'pos_embed') // [N, D]
      : undefined;
  const prediction = denoiseSide(binder, config, { latent: noisy, timestep, positions, maskBias: side.maskBias, crossKv: side.crossKv });
  const diff = sub(prediction, sub(noise, x0));
  const loss = reduceMean(mul(diff, diff), [0, 1, 2, 3], false);
  binder.finish(`SanaTransformer2DModel training graph (${store.source})`);
  options.lora?.checkAllMatched(`SanaTransformer2DModel (${store.source})`);
  g.output(prediction, PREDICTION_OUTPUT);
  addLossAndGradients(g, loss, binder.parameters());
  return { graph: g, params: binder.parameters() };
}
