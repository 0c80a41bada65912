// `sana train-vae --data DIR --out DIR ...`: trains (or fine-tunes) the DC-AE autoencoder on a caption folder.

import { parseArgs } from 'node:util';
import { trainVae } from '../train/vae-trainer.js';
import { parseNumber, parsePositiveInt, readJsonArg, parseThreads, parseBounded, parseImageSize } from './arg-values.js';
import { LIMITS } from '../limits.js';
import { UsageError } from './errors.js';
import { formatSeconds } from './progress.js';
import { createTrainProgress } from './train-progress.js';

export const TRAIN_VAE_HELP = `Usage: sana train-vae --data DIR --out DIR (--config FILE | --init DIR) [options]

Trains the DC-AE autoencoder (L1 + L2 reconstruction) on the images of a data folder (images + captions.jsonl).
Checkpoints (diffusers AutoencoderDC folder + optimizer state) go to OUT/checkpoint-latest; metrics.csv, loss.png
and validation-STEP.png (originals | reconstructions) to OUT.

Options:
  --data DIR              data folder with captions.jsonl ({"file": ..., "caption": ...} per line)
  --out DIR               output folder
  --config FILE           AutoencoderDC config.json to train from scratch
  --init DIR              an AutoencoderDC folder to fine-tune
  --freeze-encoder        train the decoder only (latents unchanged: keeps a trained transformer valid)
  --edge-weight X         add X * mean |pixel differences of the error| (sharper edges and corners; default 0)
  --resume                continue from OUT/checkpoint-latest (same data and options)
  --steps N               optimizer steps (default 2000)
  --batch N               crops per step (default 8)
  --crop N                training crop side in px (default 128)
  --image-size N          images are resized/cropped to N x N first (default 256)
  --lr X                  peak learning rate (default 1e-3)
  --warmup N              linear warmup steps (default 100)
  --schedule S            constant | cosine (default cosine)
  --weight-decay X        AdamW decoupled weight decay (default 0.01)
  --max-grad-norm X       clip the global gradient norm (default 1; 0 = off)
  --seed N                seed of initialisation and sampling (default 0)
  --checkpoint-every N    steps between checkpoints + validation (default 500)
  --validation N          images held out from the end of the folder (default 16)
  --threads N             CPU threads (default: all cores)
  --quiet                 no progress bar
  -h, --help              show this help
`;

export async function trainVaeCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      config: { type: 'string' },
      init: { type: 'string' },
      resume: { type: 'boolean' },
      'freeze-encoder': { type: 'boolean' },
      'edge-weight': { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      crop: { type: 'string' },
      'image-size': { type: 'string' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      schedule: { type: 'string' },
      'weight-decay': { type: 'string' },
      'max-grad-norm': { type: 'string' },
      seed: { type: 'string' },
      'checkpoint-every': { type: 'string' },
      validation: { type: 'string' },
      threads: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    process.stdout.write(TRAIN_VAE_HELP);
    return;
  }
  if (!v.data) throw new UsageError('--data DIR is required');
  if (!v.out) throw new UsageError('--out DIR is required');
  if (!v.config && !v.init && !v.resume) throw new UsageError('give --config FILE (a new model), --init DIR (fine-tune) or --resume');
  const config = v.config ? readJsonArg(v.config, '--config') : undefined;
  const schedule = v.schedule ?? 'cosine';
  if (schedule !== 'constant' && schedule !== 'cosine') throw new UsageError(`--schedule: expected constant or cosine, got "${schedule}"`);
  const maxNorm = v['max-grad-norm'] !== undefined ? parseNumber(v['max-grad-norm'], '--max-grad-norm') : 1;
  const progress = createTrainProgress(process.stderr, Boolean(v.quiet));
  const result = await trainVae({
    data: v.data,
    out: v.out,
    config,
    init: v.init,
    resume: Boolean(v.resume),
    freezeEncoder: Boolean(v['freeze-encoder']),
    edgeWeight: v['edge-weight'] !== undefined ? parseNumber(v['edge-weight'], '--edge-weight') : undefined,
    steps: parseBounded(v.steps ?? '2000', '--steps', LIMITS.trainSteps),
    batch: parseBounded(v.batch ?? '8', '--batch', LIMITS.trainBatch),
    crop: parseImageSize(v.crop ?? '128', '--crop'),
    imageSize: parseImageSize(v['image-size'] ?? '256', '--image-size'),
    lr: parseNumber(v.lr ?? '1e-3', '--lr'),
    warmupSteps: Math.max(0, Math.round(parseNumber(v.warmup ?? '100', '--warmup'))),
    decay: schedule,
    weightDecay: parseNumber(v['weight-decay'] ?? '0.01', '--weight-decay'),
    maxGradNorm: maxNorm > 0 ? maxNorm : null,
    seed: Math.round(parseNumber(v.seed ?? '0', '--seed')),
    checkpointEvery: parsePositiveInt(v['checkpoint-every'] ?? '500', '--checkpoint-every'),
    validationImages: parseBounded(v.validation ?? '16', '--validation', LIMITS.datasetImages),
    threads: parseThreads(v.threads),
    progress,
  });
  progress.done();
  process.stderr.write(`done: ${result.step} steps in ${formatSeconds(result.seconds)}, validation PSNR ${result.validationPsnr.toFixed(2)} dB, ${result.checkpoint}\n`);
}
