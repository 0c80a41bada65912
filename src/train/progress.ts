// What trainers report while they run (the CLI draws it as a live bar), and the per-step random stream: every
// random choice of step k comes from a generator seeded by (seed, k), so a run resumed at step k draws exactly
// what the uninterrupted run would have drawn.

import { TorchGenerator } from '../random/torch-rng.js';

export interface StepStats {
  readonly loss: number;
  readonly samplesPerS: number;
  readonly lr: number;
}

export interface TrainProgress {
  stage(text: string): void;
  step(step: number, total: number, stats: StepStats): void;
}

/** The random stream of optimizer step `step` (1-based) of a run seeded with `seed`. */
export function stepGenerator(seed: number, step: number): TorchGenerator {
  return new TorchGenerator((BigInt(seed) << 32n) ^ BigInt(step));
}
