// AdamW with decoupled weight decay (torch.optim.AdamW, torch 1.13 _single_tensor_adamw), global gradient-norm
// clipping (torch.nn.utils.clip_grad_norm_), learning-rate schedules and an EMA of the weights: the host side of
// a training step, on float32 arrays. ref: ../shared/fixtures/README.md "Training-step fixtures" (exact formulas).

export interface AdamWOptions {
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 };

/** Optimizer state of one parameter. */
export interface MomentState {
  readonly m: Float32Array;
  readonly v: Float32Array;
}

export class AdamW {
  /** Steps taken (torch's `step` per parameter; all parameters step together here). */
  step = 0;
  readonly state = new Map<string, MomentState>();

  constructor(readonly options: AdamWOptions = ADAMW_DEFAULTS) {}

  /**
   * One update of every parameter with its gradient (after any clipping) at learning rate `lr`:
   *   p = p (1 - lr wd);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
   *   p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
   * Bias corrections in double precision, tensors in float32, as torch does.
   */
  update(params: ReadonlyMap<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    this.step += 1;
    const [b1, b2] = this.options.betas;
    const { eps } = this.options;
    const decay = Math.fround(1 - lr * this.options.weightDecay);
    const c1 = Math.fround(1 - b1);
    const c2 = Math.fround(1 - b2);
    const fb1 = Math.fround(b1);
    const fb2 = Math.fround(b2);
    const stepSize = Math.fround(lr / (1 - b1 ** this.step));
    const bc2Sqrt = Math.fround(Math.sqrt(1 - b2 ** this.step));
    const feps = Math.fround(eps);
    const f = Math.fround;
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) throw new Error(`AdamW: no gradient for parameter ${name}`);
      if (g.length !== p.length) throw new Error(`AdamW: gradient of ${name} has ${g.length} elements, the parameter ${p.length}`);
      let s = this.state.get(name);
      if (!s) {
        s = { m: new Float32Array(p.length), v: new Float32Array(p.length) };
        this.state.set(name, s);
      }
      const { m, v } = s;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i];
        const pi = f(p[i] * decay);
        const mi = f(f(m[i] * fb1) + f(c1 * gi));
        const vi = f(f(v[i] * fb2) + f(f(c2 * gi) * gi));
        m[i] = mi;
        v[i] = vi;
        const denom = f(f(Math.sqrt(vi) / bc2Sqrt) + feps);
        p[i] = f(pi - f(stepSize * f(mi / denom)));
      }
    }
  }
}

export interface ClipResult {
  /** The global L2 norm before clipping. */
  readonly totalNorm: number;
  /** The factor every gradient was multiplied by (1 when not clipped). */
  readonly coefficient: number;
}

/**
 * L2 norm of all gradients together (the norm of the per-tensor norms, in the given order) and, when `maxNorm` is
 * set, scaling by min(1, maxNorm / (norm + 1e-6)) in place (also when the factor is 1), as clip_grad_norm_ does.
 */
export function clipGradNorm(grads: Iterable<Float32Array>, maxNorm: number | null): ClipResult {
  const list = [...grads];
  let sumSquares = 0;
  for (const g of list) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
    const norm = Math.fround(Math.sqrt(s));
    sumSquares += norm * norm;
  }
  const totalNorm = Math.fround(Math.sqrt(sumSquares));
  if (maxNorm === null) return { totalNorm, coefficient: 1 };
  const coefficient = Math.min(1, Math.fround(maxNorm / Math.fround(totalNorm + 1e-6)));
  for (const g of list) for (let i = 0; i < g.length; i++) g[i] *= coefficient;
  return { totalNorm, coefficient };
}

export interface LearningRateSchedule {
  readonly peak: number;
  /** Steps of linear warmup from 0 (0 = none). */
  readonly warmupSteps: number;
  readonly decay: 'constant' | 'cosine';
  /** Total steps (cosine decays from the end of warmup to `minRatio * peak` at this step). */
  readonly totalSteps: number;
  readonly minRatio?: number;
}

/** The learning rate for (1-based) optimizer step `step`. */
export function learningRate(s: LearningRateSchedule, step: number): number {
  if (s.warmupSteps > 0 && step <= s.warmupSteps) return (s.peak * step) / s.warmupSteps;
  if (s.decay === 'constant') return s.peak;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  const min = (s.minRatio ?? 0) * s.peak;
  return min + (s.peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** Exponential moving average of the weights: ema = decay ema + (1 - decay) p after each step. */
export class WeightEma {
  readonly shadow = new Map<string, Float32Array>();

  constructor(
    readonly decay: number,
    params: ReadonlyMap<string, Float32Array>,
  ) {
    for (const [name, p] of params) this.shadow.set(name, Float32Array.from(p));
  }

  update(params: ReadonlyMap<string, Float32Array>): void {
    const d = this.decay;
    for (const [name, p] of params) {
      const e = this.shadow.get(name);
      if (!e) throw new Error(`EMA: no shadow for parameter ${name}`);
      for (let i = 0; i < p.length; i++) e[i] = d * e[i] + (1 - d) * p[i];
    }
  }
}
