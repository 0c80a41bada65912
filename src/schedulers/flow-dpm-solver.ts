// ref: SANA.md §5.2 (schedule) and §5.3 (update). diffusers' DPMSolverMultistepScheduler as SANA configures it:
// algorithm_type dpmsolver++, solver_type midpoint, prediction_type flow_prediction, use_flow_sigmas,
// final_sigmas_type zero, solver_order 2 (1 also accepted). The schedule is built in float64 like diffusers'
// numpy code and stored as float32 sigmas and truncated integer timesteps; the update runs in float32 like
// diffusers' torch code (0-d float32 coefficient tensors times float32 samples), so results agree to ~1 ulp.
//
// First-order steps, exactly as diffusers decides them: the first step (no history yet), and the last step when
// euler_at_final, or lower_order_final with fewer than 15 steps, or final_sigmas_type "zero". SANA's config has
// final_sigmas_type "zero", so the last step is first order for every step count (20 included), which turns
// into x_next = D (the x0 prediction) because sigma_next = 0.

import { FlowScheduler, checkBeginIndex, checkStepArguments, checkStepCount, shiftSigma } from './flow-scheduler.js';
import { numpyLinspace } from './numpy-linspace.js';

const f32 = Math.fround;

export interface FlowDpmSolverConfig {
  numTrainTimesteps: number;
  flowShift: number;
  solverOrder: 1 | 2;
  lowerOrderFinal: boolean;
  eulerAtFinal: boolean;
  finalSigmasType: 'zero';
}

/** diffusers' defaults for everything but flow_shift, which each checkpoint sets. */
export const FLOW_DPM_SOLVER_DEFAULTS: Readonly<Omit<FlowDpmSolverConfig, 'flowShift'>> = {
  numTrainTimesteps: 1000,
  solverOrder: 2,
  lowerOrderFinal: true,
  eulerAtFinal: false,
  finalSigmasType: 'zero',
};

/** Flow sigmas for N steps (float64, descending, without the final 0): shift(0.999 (N - i) / N)-like grid. */
export function flowDpmSigmas64(numInferenceSteps: number, flowShift: number, numTrainTimesteps: number): Float64Array {
  const alphas = numpyLinspace(1, 1 / numTrainTimesteps, numInferenceSteps + 1);
  const sigmas = new Float64Array(numInferenceSteps);
  for (let i = 0; i < numInferenceSteps; i++) {
    // Reversed, and the last entry (alpha = 1, sigma = 0) dropped.
    sigmas[i] = shiftSigma(1 - alphas[numInferenceSteps - i], flowShift);
  }
  return sigmas;
}

/** lambda(sigma) = log(alpha) - log(sigma) with alpha = 1 - sigma, each operation rounded to float32. */
function lambdaF32(sigma: number): number {
  const alpha = f32(1 - sigma);
  return f32(f32(Math.log(alpha)) - f32(Math.log(sigma)));
}

export class FlowDpmSolver implements FlowScheduler {
  readonly kind = 'dpm' as const;
  readonly config: Readonly<FlowDpmSolverConfig>;
  private timestepList: number[] = [];
  private sigmaList = new Float32Array(0);
  private index = 0;
  /** Data predictions D of the previous and the current step (diffusers' model_outputs). */
  private previousDenoised: Float32Array | null = null;
  private currentDenoised: Float32Array | null = null;
  private lowerOrderNums = 0;

  constructor(config: Partial<FlowDpmSolverConfig> & Pick<FlowDpmSolverConfig, 'flowShift'>) {
    const full = { ...FLOW_DPM_SOLVER_DEFAULTS, ...config };
    if (!Number.isFinite(full.flowShift) || full.flowShift <= 0) {
      throw new RangeError(`FlowDpmSolver: flowShift must be a positive number, got ${full.flowShift}`);
    }
    if (!Number.isSafeInteger(full.numTrainTimesteps) || full.numTrainTimesteps < 2) {
      throw new RangeError(`FlowDpmSolver: numTrainTimesteps must be an integer >= 2, got ${full.numTrainTimesteps}`);
    }
    if (full.solverOrder !== 1 && full.solverOrder !== 2) {
      throw new RangeError(`FlowDpmSolver: solverOrder must be 1 or 2, got ${full.solverOrder}`);
    }
    if (full.finalSigmasType !== 'zero') {
      throw new RangeError(`FlowDpmSolver: only finalSigmasType "zero" is supported, got ${full.finalSigmasType}`);
    }
    this.config = Object.freeze(full);
  }

  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  get sigmas(): Float32Array {
    return this.sigmaList;
  }

  setBeginIndex(index: number): void {
    checkBeginIndex('FlowDpmSolver', index, this.timestepList.length);
    this.index = index;
  }

  get stepIndex(): number {
    return this.index;
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount('FlowDpmSolver', numInferenceSteps);
    const { flowShift, numTrainTimesteps } = this.config;
    const sigmas64 = flowDpmSigmas64(numInferenceSteps, flowShift, numTrainTimesteps);
    // diffusers casts sigma * 1000 (float64) to int64, which truncates toward zero.
    this.timestepList = Array.from(sigmas64, (sigma) => Math.trunc(sigma * numTrainTimesteps));
    this.sigmaList = new Float32Array(numInferenceSteps + 1);
    this.sigmaList.set(sigmas64);
    this.index = 0;
    this.previousDenoised = null;
    this.currentDenoised = null;
    this.lowerOrderNums = 0;
  }

  /** Whether step `index` of an `numSteps`-step schedule is forced to first order at the end (diffusers' rule). */
  isLowerOrderFinal(index: number, numSteps: number): boolean {
    const { eulerAtFinal, lowerOrderFinal, finalSigmasType } = this.config;
    return (
      index === numSteps - 1 &&
      (eulerAtFinal || (lowerOrderFinal && numSteps < 15) || finalSigmasType === 'zero')
    );
  }

  step(modelOutput: Float32Array, sample: Float32Array): Float32Array {
    const numSteps = this.timestepList.length;
    checkStepArguments('FlowDpmSolver', this.index, numSteps, modelOutput, sample);
    const i = this.index;
    const sigmaS = this.sigmaList[i];
    const sigmaT = this.sigmaList[i + 1];

    // flow_prediction -> data prediction: D = x - sigma * v.
    const denoised = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) denoised[k] = f32(sample[k] - f32(sigmaS * modelOutput[k]));
    this.previousDenoised = this.currentDenoised;
    this.currentDenoised = denoised;

    const firstOrder =
      this.config.solverOrder === 1 || this.lowerOrderNums < 1 || this.isLowerOrderFinal(i, numSteps);
    let next: Float32Array;
    if (sigmaT === 0) {
      // lambda(0) = +inf, exp(-h) = 0, alpha = 1: the first-order update collapses to x_next = D exactly.
      if (!firstOrder) throw new Error('FlowDpmSolver: a second-order step to sigma 0 is undefined');
      next = denoised.slice();
    } else if (firstOrder) {
      next = this.firstOrderUpdate(sample, denoised, sigmaS, sigmaT);
    } else {
      next = this.secondOrderUpdate(sample, denoised, this.previousDenoised!, sigmaS, sigmaT, this.sigmaList[i - 1]);
    }

    if (this.lowerOrderNums < this.config.solverOrder) this.lowerOrderNums++;
    this.index++;
    return next;
  }

  private firstOrderUpdate(sample: Float32Array, denoised: Float32Array, sigmaS: number, sigmaT: number): Float32Array {
    const h = f32(lambdaF32(sigmaT) - lambdaF32(sigmaS));
    const ratio = f32(sigmaT / sigmaS);
    const coefficient = f32(f32(1 - sigmaT) * f32(f32(Math.exp(-h)) - 1));
    const out = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      out[k] = f32(f32(ratio * sample[k]) - f32(coefficient * denoised[k]));
    }
    return out;
  }

  /** DPM-Solver++(2M) midpoint: D1 = (D_i - D_{i-1}) / r0, x_next = ratio x - c D_i - 0.5 c D1. */
  private secondOrderUpdate(
    sample: Float32Array,
    denoised: Float32Array,
    previousDenoised: Float32Array,
    sigmaS: number,
    sigmaT: number,
    sigmaPrevious: number,
  ): Float32Array {
    const lambdaT = lambdaF32(sigmaT);
    const lambdaS = lambdaF32(sigmaS);
    const lambdaP = lambdaF32(sigmaPrevious);
    const h = f32(lambdaT - lambdaS);
    const h0 = f32(lambdaS - lambdaP);
    const inverseR0 = f32(1 / f32(h0 / h));
    const ratio = f32(sigmaT / sigmaS);
    const coefficient = f32(f32(1 - sigmaT) * f32(f32(Math.exp(-h)) - 1));
    const halfCoefficient = f32(0.5 * coefficient);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const d1 = f32(inverseR0 * f32(denoised[k] - previousDenoised[k]));
      const firstOrderPart = f32(f32(ratio * sample[k]) - f32(coefficient * denoised[k]));
      out[k] = f32(firstOrderPart - f32(halfCoefficient * d1));
    }
    return out;
  }
}
