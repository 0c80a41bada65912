// ref: SANA.md §5.1. What the denoising loop needs from a flow-matching sampler, whichever algorithm it runs.

export interface FlowScheduler {
  /** 'dpm' (Flow-DPM-Solver, §5.2-5.3) or 'euler' (Flow-Euler, §5.4). */
  readonly kind: 'dpm' | 'euler';
  /** Builds the schedule for `numInferenceSteps` steps and resets the step counter and any solver history. */
  setTimesteps(numInferenceSteps: number): void;
  /** Model timestep for each step (what the transformer gets, before any timestep_scale). */
  readonly timesteps: readonly number[];
  /** float32 sigmas, one per step plus the final 0. */
  readonly sigmas: Float32Array;
  /** Index of the step that the next call to step() performs. */
  readonly stepIndex: number;
  /**
   * Starts the next step() at step `index` instead of 0 (image-to-image: the schedule cut by strength; diffusers'
   * set_begin_index). Solver history stays empty, so a multistep solver starts at first order.
   */
  setBeginIndex(index: number): void;
  /** Advances the sample by one step given the (guided) flow prediction v at the current step. */
  step(modelOutput: Float32Array, sample: Float32Array): Float32Array;
}

/** The flow time shift s * sigma / (1 + (s - 1) * sigma), in whatever precision the caller's numbers carry. */
export function shiftSigma(sigma: number, shift: number): number {
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

export function checkStepArguments(
  who: string,
  stepIndex: number,
  numSteps: number,
  modelOutput: Float32Array,
  sample: Float32Array,
): void {
  if (numSteps === 0) throw new Error(`${who}.step: call setTimesteps(n) before step()`);
  if (stepIndex >= numSteps) {
    throw new Error(`${who}.step: all ${numSteps} steps are done; call setTimesteps(n) to start a new schedule`);
  }
  if (!(modelOutput instanceof Float32Array) || !(sample instanceof Float32Array)) {
    throw new TypeError(`${who}.step: modelOutput and sample must be Float32Array`);
  }
  if (modelOutput.length !== sample.length) {
    throw new RangeError(
      `${who}.step: modelOutput has ${modelOutput.length} elements but sample has ${sample.length}`,
    );
  }
}

export function checkStepCount(who: string, numInferenceSteps: number): void {
  if (!Number.isSafeInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new RangeError(`${who}.setTimesteps: numInferenceSteps must be a positive integer, got ${numInferenceSteps}`);
  }
}

export function checkBeginIndex(who: string, index: number, numSteps: number): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= numSteps) {
    throw new RangeError(`${who}.setBeginIndex: index must be an integer in 0..${numSteps - 1}, got ${index}`);
  }
}
