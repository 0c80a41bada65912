// ref: SANA.md §5.4. diffusers' FlowMatchEulerDiscreteScheduler(shift) without dynamic shifting. Upstream shifts
// twice: the constructor's training sigmas (float32) are already shifted, sigma_max/sigma_min are taken from them,
// and set_timesteps shifts the linspace between them again (float64) before storing float32 sigmas. Timesteps
// are 1000 * sigma in float32, not truncated. Step: x_next = x + (sigma_next - sigma) * v in float32.

import { FlowScheduler, checkBeginIndex, checkStepArguments, checkStepCount, shiftSigma } from './flow-scheduler.js';
import { numpyLinspace } from './numpy-linspace.js';

const f32 = Math.fround;

export interface FlowMatchEulerConfig {
  numTrainTimesteps: number;
  shift: number;
}

export class FlowMatchEuler implements FlowScheduler {
  readonly kind = 'euler' as const;
  readonly config: Readonly<FlowMatchEulerConfig>;
  /** Largest and smallest shifted training sigma (float32 values, as diffusers' .item()). */
  readonly sigmaMax: number;
  readonly sigmaMin: number;
  private timestepList: number[] = [];
  private sigmaList = new Float32Array(0);
  private index = 0;

  constructor(config: Partial<FlowMatchEulerConfig> & Pick<FlowMatchEulerConfig, 'shift'>) {
    const full = { numTrainTimesteps: 1000, ...config };
    if (!Number.isFinite(full.shift) || full.shift <= 0) {
      throw new RangeError(`FlowMatchEuler: shift must be a positive number, got ${full.shift}`);
    }
    if (!Number.isSafeInteger(full.numTrainTimesteps) || full.numTrainTimesteps < 1) {
      throw new RangeError(
        `FlowMatchEuler: numTrainTimesteps must be a positive integer, got ${full.numTrainTimesteps}`,
      );
    }
    this.config = Object.freeze(full);
    this.sigmaMax = this.trainingSigmaF32(full.numTrainTimesteps);
    this.sigmaMin = this.trainingSigmaF32(1);
  }

  /** The constructor's shifted sigma for training timestep t (1..N), every operation in float32. */
  private trainingSigmaF32(t: number): number {
    const { shift, numTrainTimesteps } = this.config;
    const sigma = f32(t / numTrainTimesteps);
    return f32(f32(f32(shift) * sigma) / f32(1 + f32(f32(shift - 1) * sigma)));
  }

  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  get sigmas(): Float32Array {
    return this.sigmaList;
  }

  setBeginIndex(index: number): void {
    checkBeginIndex('FlowMatchEuler', index, this.timestepList.length);
    this.index = index;
  }

  get stepIndex(): number {
    return this.index;
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount('FlowMatchEuler', numInferenceSteps);
    const { shift, numTrainTimesteps } = this.config;
    const unshifted = numpyLinspace(
      this.sigmaMax * numTrainTimesteps,
      this.sigmaMin * numTrainTimesteps,
      numInferenceSteps,
    );
    this.sigmaList = new Float32Array(numInferenceSteps + 1);
    for (let k = 0; k < numInferenceSteps; k++) {
      // The second application of the shift (upstream behaviour, see the file comment).
      this.sigmaList[k] = shiftSigma(unshifted[k] / numTrainTimesteps, shift);
    }
    this.timestepList = Array.from(this.sigmaList.subarray(0, numInferenceSteps), (s) => f32(s * numTrainTimesteps));
    this.index = 0;
  }

  step(modelOutput: Float32Array, sample: Float32Array): Float32Array {
    checkStepArguments('FlowMatchEuler', this.index, this.timestepList.length, modelOutput, sample);
    const dt = f32(this.sigmaList[this.index + 1] - this.sigmaList[this.index]);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) out[k] = f32(sample[k] + f32(dt * modelOutput[k]));
    this.index++;
    return out;
  }
}
