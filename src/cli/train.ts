// `sana train --data DIR --base MODEL --out DIR ...`: trains or fine-tunes a SANA transformer on a caption folder;
// `sana train-default`: retrains the bundled default model from scratch.

import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { trainDefaultModel } from '../train/default-model/recipe.js';
import { DEFAULT_LORA_TARGETS } from '../nn/lora-trainable.js';
import { LORA_WEIGHTS_FILE, trainTransformer } from '../train/transformer-trainer.js';
import { parseNumber, parsePositiveInt, readJsonArg, parseThreads, parseBounded, parseImageSize } from './arg-values.js';
import { LIMITS } from '../limits.js';
import { UsageError } from './errors.js';
import { formatSeconds } from './progress.js';
import { createTrainProgress } from './train-progress.js';

export const TRAIN_HELP = `Usage: sana train --data DIR --base MODEL --out DIR [options]

Trains SANA's transformer with the rectified-flow objective on a data folder (images + captions.jsonl). The base
pipeline folder gives the frozen autoencoder, text encoder, tokenizer and scheduler (and the transformer to
fine-tune unless --transformer-config starts a new one). Latents and caption embeddings are cached in OUT/cache,
each re-encoded only when its own sources change.
Checkpoints are pipeline folders (sana generate --model OUT/checkpoint-latest) with the optimizer and EMA state.

Options:
  --data DIR                data folder with captions.jsonl ({"file": ..., "caption": ...} per line)
  --base MODEL              pipeline folder (model_index.json) with vae/, text_encoder/, tokenizer/, scheduler/
  --out DIR                 output folder (checkpoint-latest/, metrics.csv, loss.png, validation-STEP.png)
  --transformer-config F    SanaTransformer2DModel config.json: train a new transformer from scratch
  --resume                  continue from OUT/checkpoint-latest
  --lora-rank R             train LoRA adapters of rank R on the base transformer (frozen) instead of its weights;
                            checkpoints are OUT/checkpoint-latest/${LORA_WEIGHTS_FILE} (diffusers layout),
                            used with sana generate --model BASE --lora FILE
  --lora-alpha A            adapter scale numerator: adds (A / R) B A (default R; folded into the saved file)
  --lora-targets LIST       comma-separated layer names or suffixes (default ${DEFAULT_LORA_TARGETS.join(',')})
  --steps N                 optimizer steps (default 2000)
  --batch N                 examples per step (default 32)
  --lr X                    peak learning rate (default 5e-4)
  --warmup N                linear warmup steps (default 200)
  --schedule S              constant | cosine (default cosine)
  --weight-decay X          AdamW decoupled weight decay (default 0.01)
  --max-grad-norm X         clip the global gradient norm (default 1; 0 = off)
  --ema X                   EMA decay of the shipped weights (default 0.998; 0 = off)
  --caption-dropout P       share of captions replaced by the empty prompt (default 0.1)
  --flow-shift S            training flow shift (default: the base scheduler's flow_shift)
  --image-size N            images are resized/cropped to N x N (default 256)
  --seed N                  seed (default 0)
  --checkpoint-every N      steps between checkpoints (default 500)
  --validation-prompt TEXT  a prompt drawn at every checkpoint (repeatable)
  --threads N               CPU threads (default: all cores)
  --quiet                   no progress bar
  -h, --help                show this help
`;

export const TRAIN_DEFAULT_HELP = `Usage: sana train-default [--work DIR] [--out DIR] [--threads N] [--quick]

Retrains the bundled default model from scratch: writes the coloured-shapes data sets, trains the DC-AE, seeds the
Gemma-2 text encoder and its tokenizer, trains the transformer (2400 steps, then a 6000-step warm restart from
those weights, then 4500 more steps with the composable text encoder on a 24000-image set, then 3000 on a
relation-heavy set, then 3500 with the relation-marking text encoder, then 1500 on a count-heavy set, then 3000 on
captions that often leave out the colour) and exports the pipeline with 16-bit weights.
Resumes an interrupted run from the work folder. About 8 hours on 2 cores.

Options:
  --work DIR     working folder (default .train-cache)
  --out DIR      the pipeline folder written at the end (default models/default)
  --threads N    CPU threads (default: all cores)
  --quick        every stage scaled down to a smoke run (minutes)
`;

export async function trainCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      base: { type: 'string' },
      out: { type: 'string' },
      'transformer-config': { type: 'string' },
      resume: { type: 'boolean' },
      'lora-rank': { type: 'string' },
      'lora-alpha': { type: 'string' },
      'lora-targets': { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      schedule: { type: 'string' },
      'weight-decay': { type: 'string' },
      'max-grad-norm': { type: 'string' },
      ema: { type: 'string' },
      'caption-dropout': { type: 'string' },
      'flow-shift': { type: 'string' },
      'image-size': { type: 'string' },
      seed: { type: 'string' },
      'checkpoint-every': { type: 'string' },
      'validation-prompt': { type: 'string', multiple: true },
      threads: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    process.stdout.write(TRAIN_HELP);
    return;
  }
  for (const flag of ['data', 'base', 'out'] as const) if (!v[flag]) throw new UsageError(`--${flag} is required`);
  const schedule = v.schedule ?? 'cosine';
  if (schedule !== 'constant' && schedule !== 'cosine') throw new UsageError(`--schedule: expected constant or cosine, got "${schedule}"`);
  const maxNorm = v['max-grad-norm'] !== undefined ? parseNumber(v['max-grad-norm'], '--max-grad-norm') : 1;
  const ema = parseNumber(v.ema ?? '0.998', '--ema');
  if (ema < 0 || ema >= 1) throw new UsageError(`--ema: expected a decay in [0, 1), got ${ema}`);
  const dropout = parseNumber(v['caption-dropout'] ?? '0.1', '--caption-dropout');
  if (dropout < 0 || dropout > 1) throw new UsageError(`--caption-dropout: expected a share in [0, 1], got ${dropout}`);
  const lora = loraSpec(v['lora-rank'], v['lora-alpha'], v['lora-targets']);
  if (lora && v['transformer-config']) throw new UsageError('--lora-rank fine-tunes the base transformer; --transformer-config starts a new one: give one of the two');
  const progress = createTrainProgress(process.stderr, Boolean(v.quiet));
  const r = await trainTransformer({
    data: v.data!,
    base: v.base!,
    out: v.out!,
    transformerConfig: v['transformer-config'] ? readJsonArg(v['transformer-config'], '--transformer-config') : undefined,
    resume: Boolean(v.resume),
    lora,
    steps: parseBounded(v.steps ?? '2000', '--steps', LIMITS.trainSteps),
    batch: parseBounded(v.batch ?? '32', '--batch', LIMITS.trainBatch),
    lr: parseNumber(v.lr ?? '5e-4', '--lr'),
    warmupSteps: Math.max(0, Math.round(parseNumber(v.warmup ?? '200', '--warmup'))),
    decay: schedule,
    weightDecay: parseNumber(v['weight-decay'] ?? '0.01', '--weight-decay'),
    maxGradNorm: maxNorm > 0 ? maxNorm : null,
    emaDecay: ema > 0 ? ema : null,
    captionDropout: dropout,
    logitMean: 0,
    logitStd: 1,
    flowShift: v['flow-shift'] ? parseNumber(v['flow-shift'], '--flow-shift') : undefined,
    imageSize: parseImageSize(v['image-size'] ?? '256', '--image-size'),
    maxSequenceLength: 300,
    seed: Math.round(parseNumber(v.seed ?? '0', '--seed')),
    checkpointEvery: parsePositiveInt(v['checkpoint-every'] ?? '500', '--checkpoint-every'),
    validationPrompts: v['validation-prompt'] ?? [],
    validationSteps: 20,
    threads: parseThreads(v.threads),
    progress,
  });
  progress.done();
  process.stderr.write(`done: ${r.step} steps in ${formatSeconds(r.seconds)}, last loss ${r.finalLoss.toPrecision(4)}, ${r.checkpoint}\n`);
}

function loraSpec(rank?: string, alpha?: string, targets?: string) {
  if (rank === undefined) {
    if (alpha !== undefined || targets !== undefined) throw new UsageError('--lora-alpha and --lora-targets need --lora-rank');
    return undefined;
  }
  const r = parsePositiveInt(rank, '--lora-rank');
  const a = alpha !== undefined ? parseNumber(alpha, '--lora-alpha') : r;
  if (!(a > 0)) throw new UsageError(`--lora-alpha: expected a positive number, got ${alpha}`);
  const list = targets !== undefined ? targets.split(',').map((t) => t.trim()) : [...DEFAULT_LORA_TARGETS];
  if (list.some((t) => !/^[A-Za-z0-9_.]+$/.test(t))) throw new UsageError(`--lora-targets: expected comma-separated layer names such as to_q,to_k,to_v, got "${targets}"`);
  return { rank: r, alpha: a, targets: list };
}

export async function trainDefaultCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: { work: { type: 'string' }, out: { type: 'string' }, threads: { type: 'string' }, quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (v.help) {
    process.stdout.write(TRAIN_DEFAULT_HELP);
    return;
  }
  const t0 = performance.now();
  const progress = createTrainProgress(process.stderr, false);
  const out = v.out ?? 'models/default';
  await trainDefaultModel({
    work: v.work ?? '.train-cache',
    out,
    threads: parseThreads(v.threads),
    quick: Boolean(v.quick),
    progress,
  });
  progress.done();
  process.stderr.write(`done in ${formatSeconds((performance.now() - t0) / 1000)}: ${path.resolve(out)}\n`);
}
