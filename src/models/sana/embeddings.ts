// Input embeddings of SanaTransformer2DModel: patch embedding, the 2-D sin-cos position table, the sinusoidal
// timestep embedding with AdaLN-single (or the Sprint timestep + guidance embedder), and the caption projection.
// ref: SANA.md §1.2 (steps 2-4), §1.3, §1.8

import { Tensor } from '../../graph/graph.js';
import { add, cos, geluTanh, mul, silu, sin } from '../../graph/ops/elementwise.js';
import { conv2d } from '../../graph/ops/conv.js';
import { rmsNorm } from '../../graph/ops/norm.js';
import { SymDim, concat, dimOf, divDim, mulDims, reshape, transpose, unsqueeze } from '../../graph/ops/shape-ops.js';
import { HostTensor } from '../../io/host-tensor.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { SanaTransformerConfig, sanaDims } from './config.js';
import { linearFromChannels, linearTokens } from './layers.js';

const SINUSOID_CHANNELS = 256;

/**
 * The 128 frequencies exp(-ln(10000) * i / 128) rounded as the reference computes them: every step in float32
 * (diffusers' get_timestep_embedding builds them from a float32 arange), and the exponential as PyTorch's
 * vectorised float32 exp computes it (torchExpFloat32), which is off by one ulp from the correctly rounded value
 * for a few i. The product t * f for t up to 1000 is sensitive to that ulp (sin and cos of arguments up to 1000),
 * and a training step's gradient of time_embed's first layer shows it.
 */
export function sinusoidFrequencies(channels = SINUSOID_CHANNELS): Float32Array {
  const half = channels / 2;
  const negLog = Math.fround(-Math.log(10000));
  const f = new Float32Array(half);
  for (let i = 0; i < half; i++) f[i] = torchExpFloat32(Math.fround(Math.fround(negLog * i) / half));
  return f;
}

/** float32 fused multiply-add: the product of two float32 values is exact in a double, then one rounding. */
function fmaFloat32(a: number, b: number, c: number): number {
  return Math.fround(a * b + c);
}

/**
 * exp(x) in float32 as PyTorch's CPU kernels compute it (SLEEF's 1-ulp expf, which torch.exp's vectorised path
 * calls): x = q ln2 + s with q = round(x / ln2) and ln2 split in two float32 parts (Cody-Waite), then a degree-6
 * minimax polynomial of s with fused multiply-adds, and the scaling by 2^q.
 */
export function torchExpFloat32(x: number): number {
  const d = Math.fround(x);
  if (d < -104) return 0;
  if (d > 100) return Infinity;
  const q = roundHalfEven(Math.fround(d * Math.fround(1 / Math.LN2)));
  let s = fmaFloat32(q, Math.fround(-0.693145751953125), d);
  s = fmaFloat32(q, Math.fround(-1.428606765330187045e-6), s);
  let u = Math.fround(0.000198527617612853646278381);
  for (const c of [0.00139304355252534151077271, 0.00833336077630519866943359, 0.0416664853692054748535156, 0.166666671633720397949219, 0.5]) {
    u = fmaFloat32(u, s, Math.fround(c));
  }
  u = Math.fround(1 + fmaFloat32(Math.fround(s * s), u, s));
  const half = q >> 1;
  return Math.fround(Math.fround(u * 2 ** half) * 2 ** (q - half));
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** t [B] -> [B, 256] = [cos(t f), sin(t f)] (flip_sin_to_cos = True, downscale_freq_shift = 0). */
export function timestepSinusoid(t: Tensor): Tensor {
  if (t.rank !== 1 || t.dtype !== 'float32') throw new Error(`timestep ${t} must be float32 [B]`);
  // float32 in a half-precision emission too, as diffusers computes it (SANA.md §1.9)
  return t.graph.keepFloat32(() => {
    const freqs = t.graph.floats([1, SINUSOID_CHANNELS / 2], sinusoidFrequencies());
    const args = mul(unsqueeze(t, [1]), freqs); // [B, 128]
    return concat([cos(args), sin(args)], 1); // [B, 256]
  });
}

/** TimestepEmbedding: Linear(256 -> D) -> SiLU -> Linear(D -> D). */
function timestepMlp(w: WeightBinder, prefix: string, s: Tensor, dim: number): Tensor {
  const h = silu(linearTokens(w, `${prefix}.linear_1`, s, SINUSOID_CHANNELS, dim));
  return linearTokens(w, `${prefix}.linear_2`, h, dim, dim);
}

export interface TimeEmbedding {
  /** [B, 6D]: shift/scale/gate for attention and FFN, given to every block ("time_embed.out0"). */
  readonly modulation: Tensor;
  /** [B, D]: the embedded timestep, used by the final layer ("time_embed.out1"). */
  readonly embedded: Tensor;
}

/** AdaLayerNormSingle, or the Sprint timestep + guidance embedding when guidance_embeds is set. */
export function timeEmbedding(w: WeightBinder, config: SanaTransformerConfig, timestep: Tensor, guidance?: Tensor): TimeEmbedding {
  const dim = sanaDims(config).inner;
  return w.graph.scope('time_embed', () => {
    let embedded: Tensor;
    if (config.guidanceEmbeds) {
      if (!guidance) throw new Error('a guidance-embedding model (guidance_embeds: true) needs a guidance input');
      embedded = add(
        timestepMlp(w, 'time_embed.timestep_embedder', timestepSinusoid(timestep), dim),
        timestepMlp(w, 'time_embed.guidance_embedder', timestepSinusoid(guidance), dim),
      );
    } else {
      embedded = timestepMlp(w, 'time_embed.emb.timestep_embedder', timestepSinusoid(timestep), dim);
    }
    const modulation = linearTokens(w, 'time_embed.linear', silu(embedded), dim, 6 * dim);
    return { modulation, embedded };
  });
}

/** PixArtAlphaTextProjection (Linear -> GELU-tanh -> Linear) then caption_norm (RMSNorm eps 1e-5, weight). */
export function captionEmbedding(w: WeightBinder, config: SanaTransformerConfig, caption: Tensor): { projected: Tensor; normed: Tensor } {
  const dim = sanaDims(config).inner;
  return w.graph.scope('caption', () => {
    const h = geluTanh(linearTokens(w, 'caption_projection.linear_1', caption, config.captionChannels, dim));
    const projected = linearTokens(w, 'caption_projection.linear_2', h, dim, dim);
    const normed = rmsNorm(projected, 1e-5, w.get('caption_norm.weight', [dim]));
    return { projected, normed };
  });
}

export interface PatchTokens {
  /** [B, N, D], N = h * w, token index = y * w + x. */
  readonly tokens: Tensor;
  /** Token grid height and width (latent size / patch size) as run-time dims. */
  readonly h: SymDim;
  readonly w: SymDim;
}

/** Conv2d(C -> D, kernel = stride = p) and flatten to tokens. `latent` is [B, C, H, W]. */
export function patchEmbed(w: WeightBinder, config: SanaTransformerConfig, latent: Tensor): PatchTokens {
  const dim = sanaDims(config).inner;
  const p = config.patchSize;
  const c = config.inChannels;
  return w.graph.scope('patch_embed', () => {
    const b = dimOf(latent, 0);
    const h = divDim(dimOf(latent, 2), p);
    const wd = divDim(dimOf(latent, 3), p);
    const n = mulDims(h, wd);
    if (p === 1) {
      // A 1x1 conv is a product on the channel axis: read the NCHW latent as [B, C, N] and emit tokens directly.
      const flat = reshape(latent, [b, c, n]); // [B, C, N]
      return { tokens: linearFromChannels(w, 'patch_embed.proj', flat, c, dim, true, [dim, c, 1, 1]), h, w: wd };
    }
    const weight = w.get('patch_embed.proj.weight', [dim, c, p, p]);
    const conv = conv2d(latent, weight, w.get('patch_embed.proj.bias', [dim]), { stride: p }); // [B, D, h, w]
    const tokens = transpose(reshape(conv, [b, dim, n]), [0, 2, 1]); // [B, D, N] -> [B, N, D]
    return { tokens, h, w: wd };
  });
}

/**
 * The 2-D sin-cos position table for a token grid of h x w, [h*w, D] float32 (computed in float64 as the reference,
 * positions rounded through float32 as its float32 arange). The first D/2 channels encode the column, the last D/2
 * the row. base_size = sample_size // patch_size (diffusers PatchEmbed).
 */
export function sincosPositionTable(config: SanaTransformerConfig, h: number, w: number): HostTensor<'float32'> {
  const scale = config.interpolationScale;
  if (scale === undefined) throw new Error('this model has no position embedding (interpolation_scale is null)');
  const dim = sanaDims(config).inner;
  const baseSize = Math.floor(config.sampleSize / config.patchSize);
  const f = Math.fround;
  const coords = (n: number): Float32Array => {
    const step = f(n / baseSize);
    const s = f(scale);
    return Float32Array.from({ length: n }, (_, i) => f(f(i / step) / s));
  };
  const gy = coords(h);
  const gx = coords(w);
  const quarter = dim / 4; // each 1-D table has D/2 channels: D/4 sines then D/4 cosines
  const omega = new Float64Array(quarter);
  for (let k = 0; k < quarter; k++) omega[k] = 1 / 10000 ** (k / quarter);
  const out = new Float32Array(h * w * dim);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const row = (y * w + x) * dim;
      for (let k = 0; k < quarter; k++) {
        const ax = gx[x] * omega[k];
        const ay = gy[y] * omega[k];
        out[row + k] = Math.sin(ax);
        out[row + quarter + k] = Math.cos(ax);
        out[row + 2 * quarter + k] = Math.sin(ay);
        out[row + 3 * quarter + k] = Math.cos(ay);
      }
    }
  }
  return HostTensor.float32([h * w, dim], out);
}
