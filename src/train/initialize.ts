// Weights for a model trained from scratch, written as the checkpoint folder every loader reads (config.json +
// safetensors): the parameter list comes from building the model's graph over an empty checkpoint (the binder
// records every key and shape it asks for), so initialisation can never disagree with the model code.
// - DC-AE: PyTorch's defaults for Conv2d/Linear (U(+-1/sqrt(fan_in)) for weights and biases), norms at weight 1 and
//   bias 0.
// - SANA transformer: DiT / PixArt practice (xavier-uniform linears with zero biases, the timestep MLP drawn from
//   N(0, 0.02), the AdaLN modulation and the final projection at zero so every block starts as the identity and
//   the prediction at zero, scale_shift_table ~ N(0, 1) / sqrt(D)).
// Draws come from PyTorch's CPU generator (TorchGenerator), so a seed gives the same weights everywhere.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Graph } from '../graph/graph.js';
import { writeBytesAtomic } from '../io/atomic-write.js';
import { HostTensor, elementCount } from '../io/host-tensor.js';
import { writeSafetensors } from '../io/safetensors.js';
import { WeightStore } from '../io/weights.js';
import { DcaeConfig } from '../models/dcae/config.js';
import { buildDecoder } from '../models/dcae/decoder.js';
import { buildEncoder } from '../models/dcae/encoder.js';
import { SanaTransformerConfig, sanaDims } from '../models/sana/config.js';
import { captionSide, denoiseSide } from '../models/sana/graphs.js';
import { WeightBinder } from '../nn/weight-binder.js';
import { TorchGenerator, fillRandn } from '../random/torch-rng.js';

const EMPTY = WeightStore.fromFiles('(new model)', []);

/** Every weight AutoencoderDC asks for, by key, with its shape. */
export function dcaeParameterShapes(config: DcaeConfig): Map<string, readonly number[]> {
  const g = new Graph('dcae_parameters');
  const w = new WeightBinder(g, EMPTY);
  const image = g.input('image', 'float32', [1, config.inChannels, config.spatialCompressionRatio, config.spatialCompressionRatio]);
  buildDecoder(w, config, buildEncoder(w, config, image, undefined, Infinity), undefined, Infinity);
  return new Map(w.requested());
}

/** Every weight SanaTransformer2DModel asks for, by key, with its shape. */
export function sanaParameterShapes(config: SanaTransformerConfig): Map<string, readonly number[]> {
  const g = new Graph('sana_parameters');
  const w = new WeightBinder(g, EMPTY);
  const p = config.patchSize;
  const latent = g.input('x', 'float32', [1, config.inChannels, 2 * p, 2 * p]);
  const side = captionSide(w, config, g.input('c', 'float32', [1, 2, config.captionChannels]), g.input('m', 'int64', [1, 2]));
  const positions = config.interpolationScale !== undefined ? g.input('p', 'float32', [4, sanaDims(config).inner]) : undefined;
  const guidance = config.guidanceEmbeds ? g.input('g', 'float32', [1]) : undefined;
  denoiseSide(w, config, { latent, timestep: g.input('t', 'float32', [1]), guidance, positions, maskBias: side.maskBias, crossKv: side.crossKv });
  return new Map(w.requested());
}

class Draws {
  private readonly generator: TorchGenerator;

  constructor(seed: number) {
    this.generator = new TorchGenerator(seed);
  }

  uniform(shape: readonly number[], bound: number): HostTensor<'float32'> {
    const data = new Float32Array(elementCount(shape));
    for (let i = 0; i < data.length; i++) data[i] = (this.generator.uniformFloat32() * 2 - 1) * bound;
    return HostTensor.float32(shape, data);
  }

  normal(shape: readonly number[], std: number): HostTensor<'float32'> {
    const data = fillRandn(new Float32Array(elementCount(shape)), this.generator);
    for (let i = 0; i < data.length; i++) data[i] *= std;
    return HostTensor.float32(shape, data);
  }
}

const filled = (shape: readonly number[], v: number) => HostTensor.float32(shape, new Float32Array(elementCount(shape)).fill(v));

/** fan_in of a Linear [out, in] or Conv2d [out, in/groups, kh, kw] weight. */
function fanIn(shape: readonly number[]): number {
  return shape.slice(1).reduce((p, d) => p * d, 1);
}

const isNormKey = (key: string) => /(^|\.)(norm|norm_out|norm_q|norm_k|caption_norm|norm2)\.(weight|bias)$/.test(key);

export function initializeDcae(config: DcaeConfig, seed: number): Map<string, HostTensor> {
  const draws = new Draws(seed);
  const out = new Map<string, HostTensor>();
  const shapes = dcaeParameterShapes(config);
  const weightFanIn = new Map<string, number>();
  for (const [key, shape] of shapes) if (key.endsWith('.weight')) weightFanIn.set(key.slice(0, -'.weight'.length), fanIn(shape));
  for (const [key, shape] of [...shapes].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (isNormKey(key)) out.set(key, filled(shape, key.endsWith('.weight') ? 1 : 0));
    else if (key.endsWith('.weight')) out.set(key, draws.uniform(shape, 1 / Math.sqrt(fanIn(shape))));
    else {
      const fan = weightFanIn.get(key.slice(0, -'.bias'.length)) ?? shape[0];
      out.set(key, draws.uniform(shape, 1 / Math.sqrt(fan)));
    }
  }
  return out;
}

export function initializeSanaTransformer(config: SanaTransformerConfig, seed: number): Map<string, HostTensor> {
  const draws = new Draws(seed);
  const { inner } = sanaDims(config);
  const out = new Map<string, HostTensor>();
  for (const [key, shape] of [...sanaParameterShapes(config)].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (isNormKey(key)) out.set(key, filled(shape, key.endsWith('.weight') ? 1 : 0));
    else if (key.endsWith('scale_shift_table')) out.set(key, draws.normal(shape, 1 / Math.sqrt(inner)));
    else if (key.startsWith('time_embed.linear.') || key.startsWith('proj_out.')) out.set(key, filled(shape, 0));
    else if (key.endsWith('.bias')) out.set(key, filled(shape, 0));
    else if (/time_embed\.(emb\.)?(timestep|guidance)_embedder\./.test(key)) out.set(key, draws.normal(shape, 0.02));
    else if (shape.length === 4 && shape[1] === 1) out.set(key, draws.uniform(shape, 1 / Math.sqrt(fanIn(shape)))); // depthwise conv
    else {
      const fanOut = shape[0];
      out.set(key, draws.uniform(shape, Math.sqrt(6 / (fanIn(shape) + fanOut)))); // xavier uniform
    }
  }
  return out;
}

/** Writes `config.json` and `diffusion_pytorch_model.safetensors` into `dir` (created if needed). */
export function writeDiffusersComponent(dir: string, config: Record<string, unknown>, weights: ReadonlyMap<string, HostTensor>): void {
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), weights, { format: 'pt' });
  writeBytesAtomic(path.join(dir, 'config.json'), Buffer.from(`${JSON.stringify(config, null, 2)}\n`, 'utf8'));
}
