// SCMScheduler (prediction_type "trigflow"), the few-step sampler of SANA-Sprint: TrigFlow times tau in [0, pi/2],
// x0 = cos(tau) x - sin(tau) v, then a jump to the next time with fresh noise, x' = cos(tau') x0 + sin(tau') z
// sigma_data (also on the last step, where sin(0) = 0: the draw still advances the generator).
// ref: SANA.md §8 (SANA-Sprint), fixtures README "SanaSprintPipeline"

const f32 = Math.fround;

export interface ScmSchedulerConfig {
  numTrainTimesteps: number;
  sigmaData: number;
}

export interface ScmTimestepOptions {
  /** Explicit times, num_inference_steps + 1 of them, ending at 0. */
  timesteps?: readonly number[];
  /** First time (default 1.5708 ~ pi/2). */
  maxTimesteps?: number;
  /** The middle time of a 2-step schedule (default 1.3); null: linspace(max, 0, N + 1). */
  intermediateTimesteps?: number | null;
}

export const SCM_DEFAULTS = { maxTimesteps: 1.5708, intermediateTimesteps: 1.3 } as const;

/** torch.linspace(start, end, steps) in float32: from both ends towards the middle, as ATen computes it. */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < halfway ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - i - 1)));
  return out;
}

export class ScmScheduler {
  readonly kind = 'scm' as const;
  private times: Float32Array = new Float32Array(0);
  private index = 0;

  constructor(readonly config: Readonly<ScmSchedulerConfig>) {
    if (!(config.sigmaData > 0)) throw new RangeError(`ScmScheduler: sigma_data must be > 0, got ${config.sigmaData}`);
  }

  /** The N + 1 float32 times, the last one 0; steps run from each to the next. */
  get timesteps(): Float32Array {
    return this.times;
  }

  get stepIndex(): number {
    return this.index;
  }

  setTimesteps(numInferenceSteps: number, o: ScmTimestepOptions = {}): void {
    if (!Number.isSafeInteger(numInferenceSteps) || numInferenceSteps < 1) {
      throw new RangeError(`steps must be a positive integer, got ${numInferenceSteps}`);
    }
    if (numInferenceSteps > this.config.numTrainTimesteps) {
      throw new RangeError(`steps (${numInferenceSteps}) cannot exceed the scheduler's num_train_timesteps (${this.config.numTrainTimesteps})`);
    }
    const intermediate = o.intermediateTimesteps === undefined ? SCM_DEFAULTS.intermediateTimesteps : o.intermediateTimesteps;
    if (o.timesteps) {
      if (o.timesteps.length !== numInferenceSteps + 1) {
        throw new RangeError(`explicit timesteps must number steps + 1 = ${numInferenceSteps + 1}, got ${o.timesteps.length}`);
      }
      if (o.maxTimesteps !== undefined) throw new RangeError('give explicit timesteps or max timesteps, not both');
      this.times = Float32Array.from(o.timesteps);
    } else if (intermediate !== null) {
      if (numInferenceSteps !== 2) {
        throw new RangeError(`intermediate timesteps apply to 2 steps only (got ${numInferenceSteps} steps); turn them off to use linspace times`);
      }
      this.times = Float32Array.from([o.maxTimesteps ?? SCM_DEFAULTS.maxTimesteps, intermediate, 0]);
    } else {
      this.times = torchLinspaceF32(o.maxTimesteps ?? SCM_DEFAULTS.maxTimesteps, 0, numInferenceSteps + 1);
    }
    for (const t of this.times) {
      if (!Number.isFinite(t) || t < 0 || t > Math.PI / 2 + 1e-3) throw new RangeError(`TrigFlow times must lie in [0, pi/2], got ${t}`);
    }
    this.index = 0;
  }

  /** Starts the loop at step `index` (image-to-image: the schedule cut by strength). */
  setBeginIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.times.length - 1) {
      throw new RangeError(`ScmScheduler: begin index ${index} is outside 0..${this.times.length - 2}`);
    }
    this.index = index;
  }

  /**
   * One step given the TrigFlow velocity v (already scaled by sigma_data) and the standard-normal draw `randn`
   * of the sample's shape: returns the next sample and this step's clean estimate x0.
   */
  step(velocity: Float32Array, sample: Float32Array, randn: Float32Array): { next: Float32Array; denoised: Float32Array } {
    if (this.index >= this.times.length - 1) throw new Error(`ScmScheduler.step: all ${this.times.length - 1} steps are done`);
    if (velocity.length !== sample.length || randn.length !== sample.length) throw new RangeError('ScmScheduler.step: tensors of different sizes');
    const s = this.times[this.index];
    const t = this.times[this.index + 1];
    const cosS = f32(Math.cos(s));
    const sinS = f32(Math.sin(s));
    const cosT = f32(Math.cos(t));
    const sinT = f32(Math.sin(t));
    const sigmaData = f32(this.config.sigmaData);
    const denoised = new Float32Array(sample.length);
    const next = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      denoised[k] = f32(f32(cosS * sample[k]) - f32(sinS * velocity[k]));
      next[k] = f32(f32(cosT * denoised[k]) + f32(sinT * f32(randn[k] * sigmaData)));
    }
    this.index++;
    return { next, denoised };
  }
}

/** TrigFlow time tau -> the flow time s = sin(tau) / (cos(tau) + sin(tau)) the transformer is fed, in float32. */
export function trigflowToFlowTime(tau: number): number {
  const sin = f32(Math.sin(tau));
  const cos = f32(Math.cos(tau));
  return f32(sin / f32(cos + sin));
}
