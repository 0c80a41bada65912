// Checks of what each component hands back, so that a broken stage never becomes a silent garbage image: one pass
// over outputs the pipeline has already copied to JavaScript. ref: issue #17 class 5; docs/limits.md "Output checks"
//
// Error or warning, per case:
// - NaN or Infinity from any stage (text encoder, VAE encoder, ControlNet, transformer, sampler, VAE decoder) is an
//   ERROR naming the stage: no later stage can repair it, and what it would become is a wrong picture that looks
//   like a result (the [0, 1] clamp maps NaN to black and Infinity to white). Failing at the stage that made it
//   also says where to look (weights in the wrong dtype, an fp16 overflow, a corrupt file).
// - A flat image (every pixel the same colour, to within 1/255) is a WARNING: it is what an exploded guidance scale
//   or a diverged sampler gives, but a plain colour can also be what was asked for ("a white background"), so the
//   image is still written and the warning says which image, the colour and the likely cause.

/** A component produced NaN or Infinity: the message names the stage and the first bad element. */
export class NonFiniteError extends Error {
  constructor(
    message: string,
    readonly stage: string,
  ) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

/**
 * Throws a NonFiniteError if `data` holds NaN or +-Infinity. `stage` names the component and output ("the text
 * encoder's prompt embeddings"); `shape`, when given, turns the flat index into coordinates.
 */
export function checkFinite(data: ArrayLike<number>, stage: string, shape?: readonly number[]): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is 0 for every finite number and NaN for NaN and both infinities: one subtraction, no call
    if (v - v !== 0) {
      const where = shape ? `at [${unravel(i, shape).join(', ')}]` : `at element ${i}`;
      throw new NonFiniteError(`${stage} contain ${v} ${where} (of ${data.length} values); stopping: the image would be garbage`, stage);
    }
  }
}

function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let rest = index;
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = rest % shape[d];
    rest = Math.floor(rest / shape[d]);
  }
  return out;
}

/** Largest spread of a channel, in [0, 1] units, that still counts as flat (under one 8-bit level). */
export const FLAT_SPREAD = 1 / 255;

/**
 * Warnings for the images of a batch [N, 3, H, W] in [0, 1] whose every channel spans at most FLAT_SPREAD: one
 * message per flat image, naming it, its colour and the likely cause.
 */
export function flatImageWarnings(images: { shape: readonly number[]; data: Float32Array }): string[] {
  const [n, c, h, w] = images.shape;
  const plane = h * w;
  const warnings: string[] = [];
  for (let b = 0; b < n; b++) {
    let flat = true;
    const colour: number[] = [];
    for (let ch = 0; ch < c && flat; ch++) {
      const base = (b * c + ch) * plane;
      let lo = Infinity;
      let hi = -Infinity;
      for (let p = 0; p < plane; p++) {
        const v = images.data[base + p];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      flat = hi - lo <= FLAT_SPREAD;
      colour.push(Math.round(((lo + hi) / 2) * 255));
    }
    if (flat) {
      warnings.push(
        `image ${b} is flat (every pixel rgb(${colour.join(', ')})) after the VAE decode: the guidance scale may be too high or the sampler diverged; try a lower guidance or more steps`,
      );
    }
  }
  return warnings;
}
