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
import { DEFAULT_TILING, DcaeTiling, TileProgress, decodePlan, encodePlan, resolveTiling, runTiled } from './tiling.js';
import { DcaePass, availableMemoryBytes, planPass } from './memory-plan.js';
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
  /** Bytes an untiled pass may plan with, asked before each pass (default: the memory available now). */
  availableMemory?: () => number;
}

const WEIGHT_NAMES = ['diffusion_pytorch_model'];

export class Dcae {
  private constructor(
    readonly config: DcaeConfig,
    readonly tiling: DcaeTiling | undefined,
    private readonly encoder: ModelSession | undefined,
    private readonly decoder: ModelSession | undefined,
    private readonly availableMemory: () => number,
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
    return new Dcae(config, tiling, encoder, decoder, options.availableMemory ?? availableMemoryBytes);
  }

  /**
   * image [B, in, H, W] in [-1, 1], H and W multiples of the compression ratio -> latent (not scaled). Without
   * configured tiling, a pass too large for the memory available runs image by image, then in tiles (memory-plan.ts),
   * and `onNotice` says so.
   */
  async encode(image: HostTensor, onTile?: TileProgress, onNotice?: (message: string) => void): Promise<HostTensor> {
    const r = this.config.spatialCompressionRatio;
    checkInput('image', image, this.config.inChannels, r, `[B, ${this.config.inChannels}, H, W] with H and W multiples of ${r}`);
    const [, , height, width] = image.shape;
    const run = async (x: HostTensor) => (await this.runEncoder(x)).latent;
    const t = this.tiling;
    if (t) {
      if (height <= t.tileHeight && width <= t.tileWidth) return run(image);
      return runTiled(image, encodePlan(t, r, height, width), run, onTile);
    }
    const tiled = (x: HostTensor) => runTiled(x, encodePlan(DEFAULT_TILING, r, height, width), run, onTile);
    return this.planned('encode', image, height, width, run, tiled, onNotice);
  }

  /** latent [B, latent, h, w] (unscaled) -> sample [B, in, r*h, r*w], not clamped; memory handled as in encode. */
  async decode(latent: HostTensor, onTile?: TileProgress, onNotice?: (message: string) => void): Promise<HostTensor> {
    checkInput('latent', latent, this.config.latentChannels, 1, `[B, ${this.config.latentChannels}, h, w]`);
    const r = this.config.spatialCompressionRatio;
    const [, , h, w] = latent.shape;
    const run = async (x: HostTensor) => (await this.runDecoder(x)).sample;
    const t = this.tiling;
    if (t) {
      if (h <= t.tileHeight / r && w <= t.tileWidth / r) return run(latent);
      return runTiled(latent, decodePlan(t, r, h, w), run, onTile);
    }
    const tiled = (x: HostTensor) => runTiled(x, decodePlan(DEFAULT_TILING, r, h, w), run, onTile);
    return this.planned('decode', latent, r * h, r * w, run, tiled, onNotice);
  }

  /** An untiled pass as memory allows: the whole batch, image by image, or tiled image by image. */
  private async planned(
    pass: DcaePass,
    x: HostTensor,
    height: number,
    width: number,
    run: (x: HostTensor) => Promise<HostTensor>,
    runTiledOne: (x: HostTensor) => Promise<HostTensor>,
    onNotice?: (message: string) => void,
  ): Promise<HostTensor> {
    const plan = planPass(this.config, pass, x.shape[0], height, width, this.availableMemory(), DEFAULT_TILING.tileHeight);
    if (plan.mode === 'whole') return run(x);
    if (plan.mode === 'tiled') onNotice?.(plan.notice);
    const outputs: HostTensor[] = [];
    for (let b = 0; b < x.shape[0]; b++) outputs.push(await (plan.mode === 'tiled' ? runTiledOne : run)(batchItem(x, b)));
    return concatBatch(outputs);
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

/** x[b : b + 1] of a float32 [B, ...] tensor, as a view. */
function batchItem(x: HostTensor, b: number): HostTensor {
  if (x.shape[0] === 1) return x;
  const data = x.data as Float32Array;
  const n = data.length / x.shape[0];
  return HostTensor.float32([1, ...x.shape.slice(1)], data.subarray(b * n, (b + 1) * n));
}

/** [1, ...] float32 tensors stacked into [N, ...]. */
function concatBatch(parts: readonly HostTensor[]): HostTensor {
  if (parts.length === 1) return parts[0];
  const n = parts[0].size;
  const out = HostTensor.float32([parts.length, ...parts[0].shape.slice(1)]);
  parts.forEach((p, i) => (out.data as Float32Array).set(p.data as Float32Array, i * n));
  return out;
}

function sessionOptions(o: DcaeLoadOptions): SessionOptions {
  return {
    threads: o.threads,
    optimization: o.optimization,
    prepack: o.prepack,
    noConstantFolding: o.noConstantFolding,
    profilePrefix: o.profilePrefix,
    device: o.device,
    // session creation folds the Winograd and up-sampling kernels from the weights: 30 s for f32c32, 0.3 s cached
    cacheOptimizedModel: o.cacheOptimizedModel ?? 'auto',
  };
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
