// The sampler strategy of the denoising loop: what the transformer is fed at step i, how its (guided) output moves
// the sample, where the loop starts, and how clean latents are noised to a step's time (image-to-image starts and
// inpainting blends). Two families: flow matching (Flow-DPM-Solver / Flow-Euler, SanaPipeline) and TrigFlow
// consistency sampling (SCMScheduler, SanaSprintPipeline).
// ref: SANA.md §5, §8; fixtures README "SanaSprintPipeline", "SanaSprintImg2ImgPipeline"

import { HostTensor } from '../io/host-tensor.js';
import { TorchGenerator, torchRandn } from '../random/torch-rng.js';
import { FlowScheduler } from '../schedulers/flow-scheduler.js';
import { ScmScheduler, ScmTimestepOptions, trigflowToFlowTime } from '../schedulers/scm.js';

const f32 = Math.fround;

export interface ModelInput {
  /** What the transformer gets as hidden_states. */
  latent: HostTensor<'float32'>;
  /** The transformer's timestep (scaled as the model expects). */
  timestep: number;
}

export interface Sampling {
  readonly kind: 'dpm' | 'euler' | 'scm';
  /** Total steps of the schedule; the loop runs beginIndex .. total - 1. */
  readonly total: number;
  readonly beginIndex: number;
  /** Schedule time of step i, for progress events. */
  timeAt(i: number): number;
  /** The loop's first sample from a standard-normal draw. */
  initial(noise: Float32Array): Float32Array;
  /** `clean` latents noised to the time of step `index` (index = total: fully denoised, `clean` itself). */
  noised(clean: Float32Array, noise: Float32Array, index: number): Float32Array;
  /**
   * Image-to-image: cuts the schedule by strength (init = min(N strength, N), t_start = int(max(N - init, 0)), as
   * diffusers' img2img pipelines) and starts the loop there. Returns the number of steps left.
   */
  startAtStrength(strength: number): number;
  modelInput(x: HostTensor<'float32'>, i: number): ModelInput;
  /** The guided model output at step i -> the next sample and this step's estimate of the clean latents. */
  step(output: Float32Array, x: Float32Array, i: number): { next: Float32Array; denoised: Float32Array };
  /** The latents to decode after the last step. */
  final(x: Float32Array, lastDenoised: Float32Array): Float32Array;
}

/** The start of a schedule, shared by both families: the whole schedule, or the part left after a strength cut. */
abstract class CutSchedule {
  beginIndex = 0;
  abstract get total(): number;
  protected abstract readonly scheduler: { setBeginIndex(index: number): void };

  startAtStrength(strength: number): number {
    if (!(strength > 0 && strength <= 1)) throw new RangeError(`strength must be in (0, 1], got ${strength}`);
    const init = Math.min(this.total * strength, this.total);
    this.beginIndex = Math.trunc(Math.max(this.total - init, 0));
    if (this.beginIndex >= this.total) throw new RangeError(`strength ${strength} leaves no denoising step`);
    this.scheduler.setBeginIndex(this.beginIndex);
    return this.total - this.beginIndex;
  }
}

/** Flow matching: x_t = (1 - sigma) x0 + sigma noise, the transformer predicts v = noise - x0. */
export class FlowSampling extends CutSchedule implements Sampling {
  readonly kind: 'dpm' | 'euler';

  constructor(
    protected readonly scheduler: FlowScheduler,
    private readonly timestepScale: number,
  ) {
    super();
    this.kind = scheduler.kind;
  }

  get total(): number {
    return this.scheduler.timesteps.length;
  }

  timeAt(i: number): number {
    return this.scheduler.timesteps[i];
  }

  initial(noise: Float32Array): Float32Array {
    return noise;
  }

  noised(clean: Float32Array, noise: Float32Array, index: number): Float32Array {
    // diffusers' scale_noise: sigma * noise + (1 - sigma) * sample, in float32
    const sigma = this.scheduler.sigmas[index];
    const keep = f32(1 - sigma);
    return clean.map((x, k) => f32(f32(sigma * noise[k]) + f32(keep * x)));
  }

  modelInput(x: HostTensor<'float32'>, i: number): ModelInput {
    return { latent: x, timestep: f32(this.scheduler.timesteps[i] * this.timestepScale) };
  }

  step(output: Float32Array, x: Float32Array, i: number): { next: Float32Array; denoised: Float32Array } {
    const sigma = this.scheduler.sigmas[i];
    const denoised = x.map((v, k) => v - sigma * output[k]);
    return { next: this.scheduler.step(output, x), denoised };
  }

  final(x: Float32Array): Float32Array {
    return x;
  }
}

/**
 * TrigFlow (SANA-Sprint): x = cos(tau) x0 + sin(tau) z sigma_data. The transformer sees x / sigma_data scaled to
 * unit variance at the flow time s = sin / (sin + cos), and its flow output F becomes the TrigFlow velocity
 * v = ((1 - 2s) x_in + (1 - 2s + 2s^2) F) / sqrt(s^2 + (1 - s)^2) sigma_data. Each step draws fresh noise from
 * the call's generator.
 */
export class ScmSampling extends CutSchedule implements Sampling {
  readonly kind = 'scm' as const;
  private lastInput: { x: Float32Array; s: number; norm: number } | undefined;

  constructor(
    protected readonly scheduler: ScmScheduler,
    steps: number,
    times: ScmTimestepOptions,
    private readonly generator: TorchGenerator,
  ) {
    super();
    scheduler.setTimesteps(steps, times);
  }

  get total(): number {
    return this.scheduler.timesteps.length - 1;
  }

  private get sigmaData(): number {
    return f32(this.scheduler.config.sigmaData);
  }

  timeAt(i: number): number {
    return this.scheduler.timesteps[i];
  }

  initial(noise: Float32Array): Float32Array {
    return noise.map((v) => f32(v * this.sigmaData));
  }

  /** `clean` in sigma_data units (scaled latents x sigma_data); `noise` standard normal, scaled here. */
  noised(clean: Float32Array, noise: Float32Array, index: number): Float32Array {
    const tau = this.scheduler.timesteps[index];
    const c = f32(Math.cos(tau));
    const s = f32(Math.sin(tau));
    return clean.map((x, k) => f32(f32(c * x) + f32(s * f32(noise[k] * this.sigmaData))));
  }

  modelInput(x: HostTensor<'float32'>, i: number): ModelInput {
    const s = trigflowToFlowTime(this.scheduler.timesteps[i]);
    const norm = f32(Math.sqrt(f32(f32(s * s) + f32(f32(1 - s) * f32(1 - s)))));
    const input = x.data.map((v) => f32(f32(v / this.sigmaData) * norm));
    this.lastInput = { x: input, s, norm };
    return { latent: HostTensor.float32(x.shape, input), timestep: s };
  }

  step(output: Float32Array, x: Float32Array): { next: Float32Array; denoised: Float32Array } {
    if (!this.lastInput) throw new Error('ScmSampling.step before modelInput');
    const { x: input, s, norm } = this.lastInput;
    const a = f32(1 - f32(2 * s));
    const b = f32(a + f32(2 * f32(s * s)));
    const velocity = output.map((v, k) => f32(f32(f32(f32(a * input[k]) + f32(b * v)) / norm) * this.sigmaData));
    const randn = torchRandn([x.length], this.generator).data;
    return this.scheduler.step(velocity, x, randn);
  }

  final(_x: Float32Array, lastDenoised: Float32Array): Float32Array {
    return lastDenoised.map((v) => f32(v / this.sigmaData));
  }
}
