// The size limits of every numeric argument, request field and library option, in one place: the CLI, the server's
// request validation and the library check against these, so a request too large for the machine is refused in
// milliseconds with a message naming the argument, never a hang, an out-of-memory abort or a native crash.
// Each limit says why it is where it is. ref: issue #17 class 4; docs/limits.md (the table users read)

import * as os from 'node:os';

/** One limit: its value and the reason given in errors and docs. */
export interface Limit {
  readonly max: number;
  readonly why: string;
}

export const LIMITS = {
  /**
   * Characters (UTF-16 units) of one prompt or negative prompt. The text encoder keeps max_sequence_length tokens
   * (300), a few kB of text; the rest is tokenized only to count what is dropped, at ~15 us a character on one core
   * (measured, worst case), so 128 Ki characters tokenize in about 2 s and a server body cannot buy minutes.
   */
  promptChars: { max: 131072, why: 'tokenizing costs ~15 us a character; the text encoder keeps only max_sequence_length tokens' },
  /** Prompts in one call (one text-encoder batch). */
  prompts: { max: 64, why: 'the text encoder and the transformer run every prompt of a call in one batch' },
  /** Images per prompt, and images per call (prompts x images per prompt). */
  imagesPerPrompt: { max: 64, why: 'the transformer runs every image of a call (twice with guidance) in one batch' },
  images: { max: 64, why: 'the transformer runs every image of a call (twice with guidance) in one batch' },
  /** Denoising steps. */
  steps: { max: 1000, why: 'the models are trained on 1000 timesteps; a finer schedule adds no new time' },
  /**
   * Caption tokens the transformer gets (max_sequence_length). Gemma-2 slides a 4096-token window on half its
   * layers, and its attention scores are heads x L^2 floats per prompt (512 MiB at 4096).
   */
  maxSequenceLength: { max: 4096, why: "Gemma-2's sliding window is 4096 tokens and its attention memory grows as L^2" },
  /** Tokens of a Complex Human Instruction given as a library option (the reference one is about 200). */
  instructionTokens: { max: 4096, why: "Gemma-2's sliding window is 4096 tokens and its attention memory grows as L^2" },
  /** Width or height in pixels. */
  size: { max: 8192, why: "8192 px is twice the largest (4K) model's native size" },
  /** Training: optimizer steps (the metrics log and the learning-rate schedule have an entry a step). */
  trainSteps: { max: 10_000_000, why: 'ten million steps is years at the fastest step these trainers take' },
  /** Training: images in one batch (one graph run holds every image's activations). */
  trainBatch: { max: 1024, why: 'one training step holds the activations of every image of the batch' },
  /** Training data sets written (make-shapes) and validation images. */
  datasetImages: { max: 10_000_000, why: 'ten million images is thousands of GB at 256 px' },
} as const satisfies Record<string, Limit>;

export const MIN_SIZE = 32;
export const MIN_SEQUENCE_LENGTH = 2;

/** The error a limit check throws; callers with their own error type (requests, the CLI) rewrap its message. */
export class LimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LimitError';
  }
}

/** An integer in [min, limit.max], or a LimitError naming `what`, the bound and its reason. */
export function checkBounded(what: string, v: number, limit: Limit, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min) throw new LimitError(`${what} must be ${min === 1 ? 'a positive integer' : `an integer >= ${min}`}, got ${v}`);
  if (v > limit.max) throw new LimitError(`${what} is ${v}; at most ${limit.max} is accepted (${limit.why})`);
  return v;
}

/** A prompt no longer than the limit (checked before anything tokenizes it). */
export function checkPromptLength(what: string, text: string): void {
  if (text.length > LIMITS.promptChars.max) {
    throw new LimitError(`${what} has ${text.length} characters; at most ${LIMITS.promptChars.max} are accepted (${LIMITS.promptChars.why})`);
  }
}

/** Cores this process may use. */
export function coreCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * CPU threads for ONNX Runtime: a positive integer, capped at the core count (more threads than cores only
 * contend). A cap is not an error: the run goes on with the cores there are, and `notice` says so.
 */
export function capThreads(requested: number | undefined, what = 'threads'): { threads: number; notice?: string } {
  const cores = coreCount();
  if (requested === undefined) return { threads: cores };
  if (!Number.isSafeInteger(requested) || requested < 1) throw new LimitError(`${what} must be a positive integer, got ${requested}`);
  if (requested <= cores) return { threads: requested };
  return { threads: cores, notice: `${what} ${requested} is more than the ${cores} cores of this machine; using ${cores}` };
}

/**
 * Bytes of the image buffers a call certainly holds at once: the decoded float32 images [N, 3, H, W] at the
 * generated size, their resized and [0, 1] copies, and the 8-bit RGBA rows the PNG writer gets. Activations come on
 * top; this is the floor the request needs, known before any work starts.
 */
export function imageBufferBytes(images: number, width: number, height: number): number {
  return images * width * height * (3 * 4 * 3 + 4);
}

/** Share of the machine's memory the image buffers of one call may take (the models and activations need the rest). */
export const IMAGE_MEMORY_SHARE = 0.5;

/** Refuses a call whose image buffers alone would not fit in half the machine's memory. */
export function checkImageMemory(images: number, width: number, height: number, totalBytes = os.totalmem()): void {
  const need = imageBufferBytes(images, width, height);
  const budget = totalBytes * IMAGE_MEMORY_SHARE;
  if (need > budget) {
    const gib = (b: number) => (b / 2 ** 30).toFixed(1);
    throw new LimitError(
      `${images} image(s) of ${width}x${height} need ${gib(need)} GiB for their pixel buffers alone; this machine has ${gib(totalBytes)} GiB ` +
        `(at most half of it is given to images): make fewer or smaller images`,
    );
  }
}
