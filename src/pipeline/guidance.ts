// The guidance strategy of the denoising loop: which rows go through the transformer and how their outputs are
// combined. cfg: [negative; positive] (SanaPipeline); pag: [negative; positive; positive-perturbed], or
// [positive; positive-perturbed] without CFG (SanaPAGPipeline); embedded: one row with guidance as a model input
// (SanaSprintPipeline); none: one row.
// ref: SANA.md §7.3, §7.4, §1.8

import { HostTensor } from '../io/host-tensor.js';
import { concatBatch } from './batch.js';
import { DenoiseExtras } from './ports.js';

const f32 = Math.fround;

type Embeds = { embeds: HostTensor<'float32'>; mask: HostTensor<'int64'> };

export interface Guidance {
  readonly kind: 'cfg' | 'pag' | 'embedded' | 'none';
  /** Whether the negative prompt is encoded. */
  readonly needsNegative: boolean;
  /** Caption rows of the model batch from the positive (and negative) rows, one per image. */
  captionBatch(positive: Embeds, negative?: Embeds): Embeds;
  /** The model batch from the images' latents [N, ...]. */
  inputBatch(x: HostTensor<'float32'>): HostTensor<'float32'>;
  /** Extra model inputs for a batch of `images` images. */
  extras(images: number): DenoiseExtras;
  /** The model batch's output at schedule time t -> one guided output per image. */
  combine(raw: HostTensor<'float32'>, t: number): HostTensor<'float32'>;
}

function stack<T extends HostTensor<'float32'> | HostTensor<'int64'>>(parts: T[]): T {
  return parts.reduce((a, b) => concatBatch(a, b));
}

function thirds(t: HostTensor<'float32'>, parts: number): Float32Array[] {
  const n = t.size / parts;
  return Array.from({ length: parts }, (_, k) => t.data.subarray(k * n, (k + 1) * n));
}

function rowsOf(t: HostTensor<'float32'>, parts: number, data: Float32Array): HostTensor<'float32'> {
  return HostTensor.float32([t.shape[0] / parts, ...t.shape.slice(1)], data);
}

/** Classifier-free guidance: v = v_neg + g (v_pos - v_neg), active when g > 1. */
export function cfgGuidance(scale: number): Guidance {
  const g = f32(scale);
  return {
    kind: 'cfg',
    needsNegative: true,
    captionBatch: (pos, neg) => ({ embeds: concatBatch(neg!.embeds, pos.embeds), mask: concatBatch(neg!.mask, pos.mask) }),
    inputBatch: (x) => concatBatch(x, x),
    extras: () => ({}),
    combine(raw) {
      const [uncond, text] = thirds(raw, 2);
      return rowsOf(raw, 2, uncond.map((u, i) => u + f32(g * f32(text[i] - u))));
    },
  };
}

/** No guidance: the positive rows alone. */
export const noGuidance: Guidance = {
  kind: 'none',
  needsNegative: false,
  captionBatch: (pos) => pos,
  inputBatch: (x) => x,
  extras: () => ({}),
  combine: (raw) => raw,
};

/** SANA-Sprint: one row, guidance fed to the transformer's guidance embedder as g x guidance_embeds_scale. */
export function embeddedGuidance(scale: number, embedsScale: number): Guidance {
  const value = f32(f32(scale) * embedsScale);
  return {
    kind: 'embedded',
    needsNegative: false,
    captionBatch: (pos) => pos,
    inputBatch: (x) => x,
    extras: (images) => ({ guidance: HostTensor.float32([images], new Float32Array(images).fill(value)) }),
    combine: (raw) => raw,
  };
}

/**
 * Perturbed-attention guidance on the given blocks: the last third (or half, without CFG) of the batch gets an
 * identity self-attention map there. v = v_neg + g (v_pos - v_neg) + p (v_pos - v_ptb), or v_pos + p (v_pos - v_ptb).
 * An adaptive scale a makes p = max(0, pag_scale - a (1000 - t)) at schedule time t.
 */
export function pagGuidance(scale: number, pagScale: number, layers: readonly number[], adaptiveScale = 0): Guidance {
  const withCfg = scale > 1;
  const g = f32(scale);
  // diffusers' _get_pag_scale: with an adaptive scale a, pag_scale - a (1000 - t), at least 0
  const pagAt = (t: number) => f32(adaptiveScale > 0 ? Math.max(0, pagScale - adaptiveScale * (1000 - t)) : pagScale);
  const parts = withCfg ? 3 : 2;
  return {
    kind: 'pag',
    needsNegative: withCfg,
    captionBatch: (pos, neg) =>
      withCfg
        ? { embeds: stack([neg!.embeds, pos.embeds, pos.embeds]), mask: stack([neg!.mask, pos.mask, pos.mask]) }
        : { embeds: concatBatch(pos.embeds, pos.embeds), mask: concatBatch(pos.mask, pos.mask) },
    inputBatch: (x) => stack(new Array<HostTensor<'float32'>>(parts).fill(x)),
    extras: (images) => ({
      perturbed: { layers, rows: Array.from({ length: parts * images }, (_, r) => r >= (parts - 1) * images) },
    }),
    combine(raw, t) {
      const p = pagAt(t);
      if (withCfg) {
        const [uncond, text, perturbed] = thirds(raw, 3);
        return rowsOf(raw, 3, uncond.map((u, i) => f32(f32(u + f32(g * f32(text[i] - u))) + f32(p * f32(text[i] - perturbed[i])))));
      }
      const [text, perturbed] = thirds(raw, 2);
      return rowsOf(raw, 2, text.map((t, i) => f32(t + f32(p * f32(t - perturbed[i])))));
    },
  };
}

/**
 * The blocks whose self-attention PAG perturbs: each pattern is a regular expression searched (Python re.search)
 * in the module names transformer_blocks.K.attn1, as diffusers' PAGMixin does.
 */
export function resolvePagLayers(patterns: readonly string[], numLayers: number): number[] {
  const chosen = new Set<number>();
  for (const pattern of patterns) {
    let re: RegExp;
    try {
      re = new RegExp(pattern);
    } catch (e) {
      throw new RangeError(`PAG layer pattern ${JSON.stringify(pattern)} is not a valid regular expression: ${(e as Error).message}`);
    }
    let matched = false;
    for (let k = 0; k < numLayers; k++) {
      if (re.test(`transformer_blocks.${k}.attn1`)) {
        chosen.add(k);
        matched = true;
      }
    }
    if (!matched) throw new RangeError(`PAG layer pattern ${JSON.stringify(pattern)} matches none of transformer_blocks.0-${numLayers - 1}.attn1`);
  }
  return [...chosen].sort((a, b) => a - b);
}
