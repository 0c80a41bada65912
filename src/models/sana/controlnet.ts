// SanaControlNetModel: a copy of the transformer's first blocks fed the latent plus the encoded control image,
// whose block outputs, each through a zero-initialised linear layer and times the conditioning scale, are added to
// the transformer's hidden states after its blocks 1..n. Same caption graph as the transformer (its own weights),
// one step graph. ref: fixtures README "SanaControlNetPipeline"; diffusers controlnet_sana.py

import { Graph, Tensor } from '../../graph/graph.js';
import { add, mul } from '../../graph/ops/elementwise.js';
import { HostTensor } from '../../io/host-tensor.js';
import { WeightStore, findWeights } from '../../io/weights.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { ModelSession, SessionValue } from '../../runtime/backend.js';
import { compileGraph } from '../../runtime/compile.js';
import { defaultBackend } from '../../runtime/node-backend.js';
import { sanaBlock } from './block.js';
import { SanaTransformerConfig, readSanaTransformerConfig, sanaDims } from './config.js';
import { patchEmbed, sincosPositionTable, timeEmbedding } from './embeddings.js';
import { CROSS_BIAS, POSITION_TABLE, blockResidualName, buildCaptionGraph, crossKeyName, crossValueName } from './graphs.js';
import { linearTokens } from './layers.js';
import { CaptionHandle, SanaTransformerOptions, runCaptionGraph } from './transformer.js';

export const CONTROLNET_COND = 'controlnet_cond';
export const CONDITIONING_SCALE = 'conditioning_scale';

/** hidden_states, timestep, controlnet_cond [B, C, H, W] (scaled latents of the control image), the scale [1] and
 *  the caption graph's outputs -> controlnet_block_samples.k [B, N, D] for each block k. */
function buildControlNetGraph(config: SanaTransformerConfig, store: WeightStore): { graph: Graph; binder: WeightBinder } {
  const { inner } = sanaDims(config);
  const g = new Graph('sana_controlnet');
  const w = new WeightBinder(g, store);
  const latent = g.input('hidden_states', 'float32', ['B', config.inChannels, 'H', 'W']);
  const cond = g.input(CONTROLNET_COND, 'float32', ['B', config.inChannels, 'H', 'W']);
  const timestep = g.input('timestep', 'float32', ['B']);
  const scale = g.input(CONDITIONING_SCALE, 'float32', [1]);
  const positions = config.interpolationScale !== undefined ? g.input(POSITION_TABLE, 'float32', ['N', inner]) : undefined;
  const maskBias = g.input(CROSS_BIAS, 'float32', ['B', 1, 1, 'T']);
  const crossKv = Array.from({ length: config.numLayers }, (_, i) => ({
    key: g.input(crossKeyName(i), 'float32', ['B', config.numCrossAttentionHeads, config.crossAttentionHeadDim, 'T']),
    value: g.input(crossValueName(i), 'float32', ['B', config.numCrossAttentionHeads, config.crossAttentionHeadDim, 'T']),
  }));
  // PatchEmbed (with its position table, when the model has one) runs on both the latent and the control latent.
  const embed = (t: Tensor) => {
    const p = patchEmbed(w, config, t);
    return { ...p, tokens: positions ? add(p.tokens, positions) : p.tokens }; // [B, N, D]
  };
  const patches = embed(latent);
  const control = embed(cond).tokens;
  let x = add(patches.tokens, linearTokens(w, 'input_block', control, inner, inner)); // [B, N, D]
  const time = timeEmbedding(w, config, timestep);
  for (let i = 0; i < config.numLayers; i++) {
    x = sanaBlock(w, config, i, x, { modulation: time.modulation, crossKv: crossKv[i], maskBias, h: patches.h, w: patches.w });
    const sample = linearTokens(w, `controlnet_blocks.${i}`, x, inner, inner); // [B, N, D]
    g.output(mul(sample, scale), blockResidualName(i));
  }
  return { graph: g, binder: w };
}

export class SanaControlNet {
  private readonly positionTables = new Map<string, HostTensor>();

  private constructor(
    readonly config: SanaTransformerConfig,
    private readonly captionSession: ModelSession,
    private readonly stepSession: ModelSession,
  ) {}

  static async load(dir: string, options: SanaTransformerOptions = {}): Promise<SanaControlNet> {
    const config = readSanaTransformerConfig(dir);
    if (config.guidanceEmbeds) throw new Error(`${dir}/config.json: a SanaControlNetModel has no guidance embedding`);
    const store = WeightStore.open(findWeights(dir, ['diffusion_pytorch_model'], options.variant));
    const caption = buildCaptionGraph(config, store);
    const step = buildControlNetGraph(config, store);
    WeightBinder.finishAll(`SanaControlNetModel (${dir})`, [caption.binder, step.binder]);
    const backend = options.backend ?? defaultBackend;
    return new SanaControlNet(
      config,
      await backend.createSession(compileGraph(caption.graph), options),
      await backend.createSession(compileGraph(step.graph), options),
    );
  }

  /** The ControlNet's own caption projection and cross-attention keys/values, once per image batch. */
  async encodeCaption(embeds: HostTensor, mask: HostTensor): Promise<CaptionHandle> {
    return runCaptionGraph(this.captionSession, this.config, embeds, mask);
  }

  /** The scaled block samples for latents [B, C, H, W] at timestep [B] with the control latents [B, C, H, W]. */
  async blockSamples(latents: HostTensor, timestep: HostTensor, cond: HostTensor, scale: number, caption: CaptionHandle): Promise<HostTensor<'float32'>[]> {
    if (cond.shape.join() !== latents.shape.join()) {
      throw new Error(`the control latents [${cond.shape.join(', ')}] must have the latents' shape [${latents.shape.join(', ')}]`);
    }
    const feeds: Record<string, SessionValue> = {
      ...caption.tensors,
      hidden_states: latents,
      timestep,
      [CONTROLNET_COND]: cond,
      [CONDITIONING_SCALE]: HostTensor.float32([1], Float32Array.of(scale)),
    };
    if (this.config.interpolationScale !== undefined) {
      const p = this.config.patchSize;
      const key = `${latents.shape[2] / p}x${latents.shape[3] / p}`;
      if (!this.positionTables.has(key)) this.positionTables.set(key, sincosPositionTable(this.config, latents.shape[2] / p, latents.shape[3] / p));
      feeds[POSITION_TABLE] = this.positionTables.get(key)!;
    }
    const out = await this.stepSession.run(feeds);
    return Array.from({ length: this.config.numLayers }, (_, k) => out[blockResidualName(k)] as HostTensor<'float32'>);
  }

  async release(): Promise<void> {
    await this.captionSession.release();
    await this.stepSession.release();
  }
}
