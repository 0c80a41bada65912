// Trainable LoRA adapters for fine-tuning the transformer (`sana train --lora-rank R`): the chosen linear layers
// gain y += (alpha / r) (x A^T) B^T with A [r, in] and B [out, r] as graph inputs, while the base weights stay
// frozen external data in the session. Initialised as PEFT's "gaussian" does (A ~ N(0, 1/r), B = 0, so step 0 is
// the base model), targets matched as PEFT matches them (a module name or its last dotted parts), exported in the
// diffusers layout (transformer.<module>.lora_A.weight / lora_B.weight) with alpha / r folded into B, so any
// loader, ours or diffusers', applies it at strength 1 without needing the alpha.
// ref: diffusers examples/dreambooth/train_dreambooth_lora_sana.py (defaults: rank 4, targets to_k, to_q, to_v)

import { Tensor } from '../graph/graph.js';
import { mul } from '../graph/ops/elementwise.js';
import { HostTensor } from '../io/host-tensor.js';
import { TorchGenerator, fillRandn } from '../random/torch-rng.js';
import { LoraLayout, loraProduct } from './lora.js';

export interface LoraTrainingSpec {
  readonly rank: number;
  /** Scale numerator: the adapter adds (alpha / rank) B A. */
  readonly alpha: number;
  /** Module names or name suffixes (e.g. "to_q", "attn1.to_out.0", "ff.conv_inverted"). */
  readonly targets: readonly string[];
}

export const DEFAULT_LORA_TARGETS: readonly string[] = ['to_q', 'to_k', 'to_v'];

/** The diffusers keys of a module's adapter matrices. */
export function loraKeys(module: string): { down: string; up: string } {
  return { down: `transformer.${module}.lora_A.weight`, up: `transformer.${module}.lora_B.weight` };
}

/** PEFT's rule: a target matches the module named exactly so, or any module whose name ends in ".<target>". */
export function matchesLoraTarget(module: string, targets: readonly string[]): boolean {
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

interface AdaptedModule {
  readonly module: string;
  readonly inF: number;
  readonly outF: number;
}

/** Asks the caller for a float32 graph input of this key and shape (registered as a trainable parameter). */
export type ParameterInput = (key: string, shape: readonly number[]) => Tensor;

export class TrainableLora {
  private readonly adapted = new Map<string, AdaptedModule>();
  private readonly matchedTargets = new Set<string>();

  constructor(readonly spec: LoraTrainingSpec) {
    if (!Number.isInteger(spec.rank) || spec.rank < 1) throw new Error(`LoRA rank: expected a positive integer, got ${spec.rank}`);
    if (!Number.isFinite(spec.alpha) || spec.alpha <= 0) throw new Error(`LoRA alpha: expected a positive number, got ${spec.alpha}`);
    if (spec.targets.length === 0) throw new Error('LoRA targets: expected at least one module name');
  }

  get scale(): number {
    return this.spec.alpha / this.spec.rank;
  }

  /** The modules given adapters so far, in the order the graph asked for them. */
  modules(): readonly AdaptedModule[] {
    return [...this.adapted.values()];
  }

  /** (alpha / r) (x A^T) B^T for a targeted layer (its A and B requested from `param`), else undefined. */
  delta(module: string, x: Tensor, inF: number, outF: number, layout: LoraLayout, param: ParameterInput): Tensor | undefined {
    if (!matchesLoraTarget(module, this.spec.targets)) return undefined;
    for (const t of this.spec.targets) if (module === t || module.endsWith(`.${t}`)) this.matchedTargets.add(t);
    const previous = this.adapted.get(module);
    if (previous && (previous.inF !== inF || previous.outF !== outF)) {
      throw new Error(`LoRA training: ${module} is used as ${previous.inF} -> ${previous.outF} and as ${inF} -> ${outF} features`);
    }
    this.adapted.set(module, { module, inF, outF });
    const keys = loraKeys(module);
    const down = param(keys.down, [this.spec.rank, inF]);
    const up = param(keys.up, [outF, this.spec.rank]);
    return mul(loraProduct(down, up, x, layout), this.scale);
  }

  /** Throws, naming them, if some targets matched no linear layer of the model. */
  checkAllMatched(what: string): void {
    const unmatched = this.spec.targets.filter((t) => !this.matchedTargets.has(t));
    if (unmatched.length) {
      throw new Error(`--lora-targets: ${unmatched.join(', ')} match no linear layer of ${what} (layer names look like transformer_blocks.0.attn1.to_q)`);
    }
  }

  /** Parameter shapes by key. */
  shapes(): Map<string, readonly number[]> {
    const out = new Map<string, readonly number[]>();
    for (const { module, inF, outF } of this.adapted.values()) {
      const keys = loraKeys(module);
      out.set(keys.down, [this.spec.rank, inF]);
      out.set(keys.up, [outF, this.spec.rank]);
    }
    return out;
  }

  /** Starting values: A ~ N(0, (1/r)^2) from the seeded generator, module by module; B = 0. */
  initialValues(seed: number): Map<string, Float32Array> {
    const g = new TorchGenerator(seed);
    const out = new Map<string, Float32Array>();
    for (const { module, inF, outF } of this.adapted.values()) {
      const keys = loraKeys(module);
      const down = fillRandn(new Float32Array(this.spec.rank * inF), g);
      for (let i = 0; i < down.length; i++) down[i] /= this.spec.rank;
      out.set(keys.down, down);
      out.set(keys.up, new Float32Array(outF * this.spec.rank));
    }
    return out;
  }

  /** The adapter file's tensors (diffusers keys) with alpha / r folded into every B. */
  exportTensors(values: ReadonlyMap<string, Float32Array>): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const { module, inF, outF } of this.adapted.values()) {
      const keys = loraKeys(module);
      const down = values.get(keys.down);
      const up = values.get(keys.up);
      if (!down || !up) throw new Error(`LoRA export: no values for ${module}`);
      out.set(keys.down, HostTensor.float32([this.spec.rank, inF], Float32Array.from(down)));
      out.set(keys.up, HostTensor.float32([outF, this.spec.rank], up.map((v) => v * this.scale)));
    }
    return out;
  }
}
