// Loading and running AutoencoderDC: config, strict weight binding, one compiled graph per direction with
// symbolic batch and size (every image size that is a multiple of the compression ratio), input validation and
// optional tiling. ref: SANA.md §3

import * as path from 'node:path';
import { Graph, Tensor } from '../../graph/graph.js';
import { HostTensor } from '../../io/host-tensor.js';
import { checkLayerCount } from '../../nn/layer-count.js';
import { WeightStore, findWeights } from '../../io/weights.js';
import { Backend, ModelSession, SessionOptions } from '../../runtime/backend.js';
import { compileGraph } from '../../runtime/compile.js';
import { defaultBackend } from '../../runtime/node-backend.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { LoadOptions } from '../component.js';
import { DcaeConfig, readDcaeConfig } from './config.js';
import { buildDecoder } from './decoder.js';
import { buildEncoder } from './encoder.js';
import { DcaeTiling, TileProgress, decodePlan, encodePlan, resolveTiling, runTiled } from './tiling.js';
import { WINOGRAD_MIN_CHANNELS } from './winograd.js';

export type DcaePart = 'encoder' | 'decoder';

export interface DcaeLoadOptions extends LoadOptions {
  /** Which halves to build (default both); strict key checking covers the halves built. */
  parts?: readonly DcaePart[];
  /** Tiled encode/decode for large images: true for diffusers' 512/448 px tiles, or the geometry. */
  tiling?: boolean | Partial<DcaeTiling>;
  /** Debug: also return every stage output (diffusers module names, see intermediates.safetensors). */
  intermediates?: boolean;
  /**
   * Stages with at least this many channels compute their ResBlocks' 3x3 convs, and the decoder's interpolate
   * up-block conv, as Winograd F(4x4, 3x3) (default 256: only where it is faster; Infinity turns it off). Same
   * results to float rounding.
   */
  winogradMinChannels?: number;
  backend?: Backend;
}

const WEIGHT_NAMES = ['diffusion_pytorch_model'];

export class Dcae {
  private constructor(
    readonly config: DcaeConfig,
    readonly tiling: DcaeTiling | undefined,
    private readonly encoder: ModelSession | undefined,
    private readonly decoder: ModelSession | undefined,
  ) {}

  static async load(dir: string, options: DcaeLoadOptions = {}): Promise<Dcae> {
    const config = readDcaeConfig(path.join(dir, 'config.json'));
    const tiling = resolveTiling(options.tiling, config.spatialCompressionRatio);
    const store = WeightStore.open(findWeights(dir, WEIGHT_NAMES, options.variant));
    const parts = options.parts ?? ['encoder', 'decoder'];
    const graphs: Partial<Record<DcaePart, Graph>> = {};
    const problems: string[] = [];
    for (const part of parts) {
      try {
        graphs[part] = buildGraph(part, config, store, options.intermediates ?? false, options.winogradMinChannels);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (problems.length) throw new Error(problems.join('\n'));
    const backend = options.backend ?? defaultBackend;
    const session = async (g: Graph | undefined) => (g ? backend.createSession(compileGraph(g), sessionOptions(options)) : undefined);
    const encoder = await session(graphs.encoder);
    const decoder = await session(graphs.decoder);
    return new Dcae(config, tiling, encoder, decoder);
  }

  /** image [B, in, H, W] in [-1, 1], H and W multiples of the compression ratio -> latent (not scaled). */
  async encode(image: HostTensor, onTile?: TileProgress): Promise<HostTensor> {
    const r = this.config.spatialCompressionRatio;
    checkInput('image', image, this.config.inChannels, r, `[B, ${this.config.inChannels}, H, W] with H and W multiples of ${r}`);
    const t = this.tiling;
    if (t && (image.shape[2] > t.tileHeight || image.shape[3] > t.tileWidth)) {
      const plan = encodePlan(t, r, image.shape[2], image.shape[3]);
      return runTiled(image, plan, async (tile) => (await this.runEncoder(tile)).latent, onTile);
    }
    return (await this.runEncoder(image)).latent;
  }

  /** latent [B, latent, h, w] (unscaled) -> sample [B, in, r*h, r*w], not clamped. */
  async decode(latent: HostTensor, onTile?: TileProgress): Promise<HostTensor> {
    checkInput('latent', latent, this.config.latentChannels, 1, `[B, ${this.config.latentChannels}, h, w]`);
    const t = this.tiling;
    const r = this.config.spatialCompressionRatio;
    if (t && (latent.shape[2] > t.tileHeight / r || latent.shape[3] > t.tileWidth / r)) {
      const plan = decodePlan(t, r, latent.shape[2], latent.shape[3]);
      return runTiled(latent, plan, async (tile) => (await this.runDecoder(tile)).sample, onTile);
    }
    return (await this.runDecoder(latent)).sample;
  }

  /** Untiled encode returning `latent` plus, when loaded with `intermediates`, every encoder stage output. */
  async runEncoder(image: HostTensor): Promise<Record<string, HostTensor>> {
    if (!this.encoder) throw new Error('DC-AE: the encoder was not loaded (load with parts including "encoder")');
    return this.encoder.run({ image });
  }

  /** Untiled decode returning `sample` plus, when loaded with `intermediates`, every decoder stage output. */
  async runDecoder(latent: HostTensor): Promise<Record<string, HostTensor>> {
    if (!this.decoder) throw new Error('DC-AE: the decoder was not loaded (load with parts including "decoder")');
    return this.decoder.run({ latent });
  }

  async release(): Promise<void> {
    await this.encoder?.release();
    await this.decoder?.release();
  }
}

export const loadDcae = (dir: string, options?: DcaeLoadOptions): Promise<Dcae> => Dcae.load(dir, options);

function sessionOptions(o: DcaeLoadOptions): SessionOptions {
  return { threads: o.threads, optimization: o.optimization, prepack: o.prepack, noConstantFolding: o.noConstantFolding, profilePrefix: o.profilePrefix, device: o.device };
}

/** Builds one half; throws the binder's single error listing missing, mis-shaped and unexpected keys. */
export function buildGraph(
  part: DcaePart,
  config: DcaeConfig,
  store: WeightStore,
  intermediates: boolean,
  winogradMinChannels = WINOGRAD_MIN_CHANNELS,
): Graph {
  const g = new Graph(`dcae_${part}`);
  const other = part === 'encoder' ? 'decoder.' : 'encoder.';
  const w = new WeightBinder(g, store, {
    ignore: (name) => name.startsWith(other) || name.endsWith('.num_batches_tracked'),
  });
  checkStageLayers(part, config, store);
  const taps: Array<[string, Tensor]> = [];
  const tap = intermediates ? (name: string, t: Tensor) => taps.push([name, t]) : undefined;
  if (part === 'encoder') {
    const image = g.input('image', 'float32', ['B', config.inChannels, 'H', 'W']);
    g.output(buildEncoder(w, config, image, tap, winogradMinChannels), 'latent');
  } else {
    const latent = g.input('latent', 'float32', ['B', config.latentChannels, 'h', 'w']);
    g.output(buildDecoder(w, config, latent, tap, winogradMinChannels), 'sample');
  }
  w.finish(`AutoencoderDC ${part}`);
  for (const [name, t] of taps) g.output(t, name);
  return g;
}

/**
 * Each stage's layers_per_block against the checkpoint before its blocks are built (a config claiming 100000 layers
 * would otherwise build for minutes): stage i holds its layers plus the up/down-sampling block, when it has one,
 * as <part>.<up|down>_blocks.i.0, .1, ...
 */
function checkStageLayers(part: DcaePart, config: DcaeConfig, store: WeightStore): void {
  const layers = part === 'encoder' ? config.encoderLayersPerBlock : config.decoderLayersPerBlock;
  const container = part === 'encoder' ? 'encoder.down_blocks' : 'decoder.up_blocks';
  const key = part === 'encoder' ? 'encoder_layers_per_block' : 'decoder_layers_per_block';
  const stages = layers.length;
  for (let i = 0; i < stages; i++) {
    const entries = layers[i] + (i < stages - 1 && layers[i] > 0 ? 1 : 0);
    checkLayerCount(store, `${container}.${i}`, entries, 'the AutoencoderDC config', `${key}[${i}] (with the sampling block)`);
  }
}

function checkInput(name: string, t: HostTensor, channels: number, multiple: number, expected: string): void {
  const bad = (why: string): never => {
    throw new Error(`DC-AE: input "${name}" has ${t.dtype} shape [${t.shape.join(', ')}]; expected float32 ${expected} (${why})`);
  };
  if (t.dtype !== 'float32') bad(`dtype ${t.dtype}`);
  if (t.shape.length !== 4) bad(`rank ${t.shape.length}`);
  const [b, c, h, w] = t.shape;
  if (b < 1 || h < 1 || w < 1) bad('empty dimension');
  if (c !== channels) bad(`${c} channels instead of ${channels}`);
  if (h % multiple !== 0 || w % multiple !== 0) bad(`${h} x ${w} is not a multiple of ${multiple}`);
}
