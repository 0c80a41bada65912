// LoRA adapters for a model's linear (and 1x1 conv) layers: y = x W^T + s (x A^T) B^T, with A = lora_A / lora_down
// [r, in] and B = lora_B / lora_up [out, r]. Read from diffusers/PEFT files (transformer.<module>.lora_A.weight) and
// kohya/NVlabs files (lora_unet_<module with _>.lora_down.weight, with an optional .alpha giving s = alpha / r),
// several at once, each with its own strength. Applied in the graph on the activations, so the base weights stay
// memory-mapped, or fused (W + s B A, folded by ONNX Runtime when the session is built). Strict: an adapter that no
// layer of the model takes is an error naming it.

import * as fs from 'node:fs';
import { Tensor } from '../graph/graph.js';
import { add, mul } from '../graph/ops/elementwise.js';
import { fusedMatmul, linear } from '../graph/ops/linalg.js';
import { HostTensor } from '../io/host-tensor.js';
import { readSafetensors } from '../io/safetensors.js';

export interface LoraFileSpec {
  file: string;
  /** User strength (default 1), multiplied with the file's own alpha / rank. */
  scale?: number;
}

export interface LoraAdapter {
  /** [r, in] float32 */
  readonly down: HostTensor<'float32'>;
  /** [out, r] float32 */
  readonly up: HostTensor<'float32'>;
  readonly scale: number;
  readonly source: string;
}

/** "FILE" or "FILE:SCALE" (a Windows drive letter or a path with ":" keeps its colon when no number follows). */
export function parseLoraArg(text: string): LoraFileSpec {
  const m = text.match(/^(.*):(-?\d+(?:\.\d+)?(?:e-?\d+)?)$/i);
  return m ? { file: m[1], scale: Number(m[2]) } : { file: text };
}

function asMatrix(t: HostTensor, key: string, file: string): HostTensor<'float32'> {
  const s = t.shape;
  // 1x1 conv adapters [r, in, 1, 1] / [out, r, 1, 1] are matrices
  if (!(s.length === 2 || (s.length === 4 && s[2] === 1 && s[3] === 1))) {
    throw new Error(`LoRA ${file}: ${key} has shape [${s.join(', ')}]; expected a matrix (or a 1x1 conv kernel)`);
  }
  return HostTensor.float32([s[0], s[1]], Float32Array.from(t.toFloat32()));
}

/** One file's adapters by module name (diffusers names with dots, or kohya names with underscores). */
function readLoraFile(spec: LoraFileSpec): Map<string, LoraAdapter> {
  if (!fs.existsSync(spec.file)) throw new Error(`LoRA ${spec.file} does not exist`);
  const tensors = readSafetensors(spec.file);
  const modules = new Map<string, { down?: HostTensor; up?: HostTensor; alpha?: number; downKey?: string }>();
  const entry = (m: string) => {
    let e = modules.get(m);
    if (!e) modules.set(m, (e = {}));
    return e;
  };
  for (const [key, t] of tensors) {
    let m: RegExpMatchArray | null;
    if ((m = key.match(/^(?:transformer\.)?(.+)\.lora_A(?:\.default)?\.weight$/)) || (m = key.match(/^(?:lora_unet_|lora_transformer_)?(.+)\.lora_down\.weight$/))) {
      entry(m[1]).down = t;
      entry(m[1]).downKey = key;
    } else if ((m = key.match(/^(?:transformer\.)?(.+)\.lora_B(?:\.default)?\.weight$/)) || (m = key.match(/^(?:lora_unet_|lora_transformer_)?(.+)\.lora_up\.weight$/))) {
      entry(m[1]).up = t;
    } else if ((m = key.match(/^(?:transformer\.|lora_unet_|lora_transformer_)?(.+)\.alpha$/))) {
      entry(m[1]).alpha = t.toFloat32()[0];
    } else {
      throw new Error(`LoRA ${spec.file}: tensor "${key}" is neither lora_A/lora_B (diffusers) nor lora_down/lora_up/alpha (kohya)`);
    }
  }
  const out = new Map<string, LoraAdapter>();
  for (const [module, e] of modules) {
    if (!e.down || !e.up) throw new Error(`LoRA ${spec.file}: module ${module} has ${e.down ? 'no up (lora_B)' : 'no down (lora_A)'} matrix`);
    const down = asMatrix(e.down, e.downKey!, spec.file);
    const up = asMatrix(e.up, `${module} up`, spec.file);
    const rank = down.shape[0];
    if (up.shape[1] !== rank) throw new Error(`LoRA ${spec.file}: module ${module}: down has rank ${rank} but up is [${up.shape.join(', ')}]`);
    const scale = (spec.scale ?? 1) * (e.alpha !== undefined ? e.alpha / rank : 1);
    out.set(module, { down, up, scale, source: spec.file });
  }
  return out;
}

export class LoraSet {
  private readonly byModule = new Map<string, LoraAdapter[]>();
  private readonly used = new Set<string>();

  constructor(readonly specs: readonly LoraFileSpec[], readonly fuse = false) {
    for (const spec of specs) {
      for (const [module, adapter] of readLoraFile(spec)) {
        const list = this.byModule.get(module) ?? [];
        list.push(adapter);
        this.byModule.set(module, list);
      }
    }
  }

  /** The adapters of the layer `module` (diffusers name, e.g. transformer_blocks.0.attn1.to_q), marked used. */
  adapters(module: string): LoraAdapter[] {
    const found: LoraAdapter[] = [];
    for (const name of new Set([module, module.replace(/\./g, '_')])) {
      const list = this.byModule.get(name);
      if (list) {
        found.push(...list);
        this.used.add(name);
      }
    }
    return found;
  }

  /** Throws, naming them, if some adapters matched no layer. */
  checkAllUsed(what: string): void {
    const unused = [...this.byModule.keys()].filter((m) => !this.used.has(m));
    if (unused.length) {
      const files = [...new Set(unused.flatMap((m) => this.byModule.get(m)!.map((a) => a.source)))];
      throw new Error(
        `LoRA ${files.join(', ')}: ${unused.length} adapter(s) match no linear layer of ${what}: ${unused.slice(0, 10).join(', ')}${unused.length > 10 ? ', ...' : ''}`,
      );
    }
  }
}

function checkShape(a: LoraAdapter, module: string, inF: number, outF: number): void {
  if (a.down.shape[1] !== inF || a.up.shape[0] !== outF) {
    throw new Error(
      `LoRA ${a.source}: ${module} maps ${a.down.shape[1]} -> ${a.up.shape[0]} features, but the layer is ${inF} -> ${outF}`,
    );
  }
}

/** Sum over adapters of s B A, [out, in], for fusing into the weight. */
export function loraWeightDelta(adapters: readonly LoraAdapter[], module: string, inF: number, outF: number): HostTensor<'float32'> {
  const delta = new Float64Array(outF * inF);
  for (const a of adapters) {
    checkShape(a, module, inF, outF);
    const r = a.down.shape[0];
    for (let o = 0; o < outF; o++) {
      for (let k = 0; k < r; k++) {
        const b = a.scale * a.up.data[o * r + k];
        if (b === 0) continue;
        for (let i = 0; i < inF; i++) delta[o * inF + i] += b * a.down.data[k * inF + i];
      }
    }
  }
  return HostTensor.float32([outF, inF], Float32Array.from(delta));
}

export type LoraLayout = 'tokens' | 'to-channels' | 'from-channels';

/**
 * One adapter's (x A^T) B^T in the layout the layer uses: tokens [..., in] -> [..., out]; to-channels [B, N, in] ->
 * [B, out, N]; from-channels [B, in, N] -> [B, N, out]. `down` is A [r, in], `up` is B [out, r].
 */
export function loraProduct(down: Tensor, up: Tensor, x: Tensor, layout: LoraLayout): Tensor {
  if (layout === 'tokens') return linear(linear(x, down), up); // [..., r] -> [..., out]
  if (layout === 'to-channels') return fusedMatmul(up, fusedMatmul(down, x, { transB: true })); // [B, r, N] -> [B, out, N]
  return linear(fusedMatmul(x, down, { transA: true, transB: true }), up); // [B, N, r] -> [B, N, out]
}

/** The adapters' contribution s (x A^T) B^T to a layer's output, in the layer's layout (see loraProduct). */
export function loraActivationDelta(
  adapters: readonly LoraAdapter[],
  module: string,
  x: Tensor,
  inF: number,
  outF: number,
  layout: LoraLayout,
): Tensor | undefined {
  let sum: Tensor | undefined;
  for (const a of adapters) {
    checkShape(a, module, inF, outF);
    const g = x.graph;
    const y = loraProduct(g.constant(a.down, `${module}.lora_down`), g.constant(a.up, `${module}.lora_up`), x, layout);
    const scaled = mul(y, a.scale);
    sum = sum ? add(sum, scaled) : scaled;
  }
  return sum;
}
