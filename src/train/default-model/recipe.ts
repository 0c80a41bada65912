// The bundled default model, retrained from scratch by one command (`sana train-default`): the procedural data
// sets, the DC-AE autoencoder, the latent scaling factor, a seeded Gemma-2 text encoder with its word tokenizer
// (frozen at initialisation: the caption language is a small closed grammar, and the DiT's cross-attention learns
// the mapping from the encoder's context-mixing features; its composable form, which mixes words linearly, for the
// third and fourth transformer runs, and the marking form of relation-marker.ts from the fifth on, which ships; see
// text-encoder/tiny-gemma.ts), the SANA transformer in seven runs,
// and the export as a diffusers pipeline folder with 16-bit weights. Every stage resumes: an
// interrupted run picks up from the last checkpoint of the stage it was in.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomic } from '../../io/atomic-write.js';
import { HostTensor, floatToHalf } from '../../io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../../io/safetensors.js';
import { Dcae } from '../../models/dcae/model.js';
import { readCaptionFolder, loadTrainingImage } from '../caption-folder.js';
import { TrainProgress } from '../progress.js';
import { initializeSanaTransformer, writeDiffusersComponent } from '../initialize.js';
import { parseSanaTransformerConfig } from '../../models/sana/config.js';
import { readJsonFile } from '../../io/config.js';
import { CAPTIONS_FILE, writeShapesDataset } from '../shapes/dataset.js';
import type { KindWeights } from '../shapes/scene.js';
import type { CaptionOptions } from '../shapes/caption.js';
import { GemmaTokenizer } from '../../text/tokenizer.js';
import { relationMarkerTokens } from './relation-marker.js';
import { evaluationPrompts } from '../shapes/evaluation.js';
import { SeededGemma2Options, writeSeededGemma2, writeShapesTokenizer } from '../text-encoder/tiny-gemma.js';
import { trainTransformer } from '../transformer-trainer.js';
import { trainVae } from '../vae-trainer.js';
import { DEFAULT_IMAGE_SIZE, DEFAULT_SCHEDULER_CONFIG, DEFAULT_TRANSFORMER_CONFIG, DEFAULT_VAE_CONFIG, MODEL_INDEX } from './configs.js';

export interface RecipeOptions {
  /** Working folder: data sets, checkpoints, caches, logs. */
  readonly work: string;
  /** Where the finished pipeline folder goes. */
  readonly out: string;
  readonly threads?: number;
  readonly progress?: TrainProgress;
  /** Scale every stage down (a smoke run of the whole recipe, for tests). */
  readonly quick?: boolean;
}

export const RECIPE = {
  seed: 0,
  vae: { images: 1500, validation: 16, steps: 1800, batch: 8, crop: 128, lr: 1.5e-3, warmup: 100, checkpointEvery: 600 },
  // A second run from the first one's weights (a warm restart at a lower peak rate): edges and corners sharpen long
  // after the first cosine cycle has cooled (27.5 -> 28.3 dB validation PSNR in its first 1000 steps).
  vaeRefine: { steps: 4000, lr: 6e-4, warmup: 50, checkpointEvery: 500 },
  transformer: { images: 6000, dataSeed: 2, steps: 2400, batch: 32, lr: 5e-4, warmup: 200, emaDecay: 0.998, checkpointEvery: 400 },
  // A warm restart from the first run's weights (as `sana train --base <first>/checkpoint-latest --steps 6000 --lr
  // 3e-4 --warmup 100`): attribute accuracy on the held-out prompts rose from 39.9% after the first run to 58.7% 2000
  // steps into this one, 63.9% at 3500.
  transformerRefine: { steps: 6000, lr: 3e-4, warmup: 100, checkpointEvery: 500 },
  // A third run from the second one's weights (exported to 16 bits) with the text encoder swapped for its composable
  // form (same seed and draws: position-only attention, no MLP; see text-encoder/tiny-gemma.ts) on a fresh, larger
  // data set: the first two runs' random MLP features let the DiT bind shape to colour. Held-out attributes 63.9% ->
  // 71.6% after 1000 steps, 73.1% at 2500, 72.6% at the end (shape 35.9% -> 54.7%, relation 6.3% -> 12.5%).
  transformerCompose: { images: 24000, dataSeed: 3, steps: 4500, lr: 3e-4, warmup: 200, checkpointEvery: 500 },
  // A fourth run from the third one's weights (exported to 16 bits) on a relation-heavy set (kinds 0.25 / 0.5 /
  // 0.25) with training flow shift 1.5 (more steps at the high noise levels where layouts are decided): held-out
  // attributes 72.6% -> 77.4% (relation 12.5% -> 37.5%, count 56.3% -> 81.3%; 70.7% after its first 1000 steps).
  transformerRelations: {
    images: 24000,
    dataSeed: 5,
    kinds: { single: 0.25, relation: 0.5, count: 0.25 },
    steps: 3000,
    lr: 3e-4,
    warmup: 100,
    flowShift: 1.5,
    checkpointEvery: 500,
  },
  // A fifth run from the fourth one's weights (exported to 16 bits) with the text encoder rewritten to keep each
  // token's own embedding on its first 64 channels (identityChannels) and to mark the relation words on the lowest
  // rotary frequency (markedTokens, see relation-marker.ts), on captions that name each word on its own now and then
  // (omit colour / shape 0.15) and never put the position first: held-out attributes 77.4% -> 80.8% (relation 37.5%
  // -> 87.5%: flipping the relation word of a prompt now flips the layout in 12 of 16 prompts, 0 before; count
  // 81.3% -> 56.3%).
  transformerMarked: {
    images: 24000,
    dataSeed: 6,
    kinds: { single: 0.25, relation: 0.5, count: 0.25 },
    captions: { positionFirst: 0, omitColor: 0.15, omitShape: 0.15 },
    identityChannels: 64,
    steps: 3500,
    lr: 3e-4,
    warmup: 100,
    flowShift: 1.5,
    checkpointEvery: 500,
  },
  // A sixth run from the fifth one's weights (exported to 16 bits) on a count-heavy set (kinds 0.3 / 0.3 / 0.4) at a
  // third of the peak rate: held-out attributes 80.8% -> 82.2% (relation 14 -> 15 of 16; count stayed at 8-9 of 16,
  // its failures being the held-out colour-shape pairs drawn as blobs that merge or split).
  transformerCount: {
    images: 16000,
    dataSeed: 8,
    kinds: { single: 0.3, relation: 0.3, count: 0.4 },
    captions: { positionFirst: 0, omitColor: 0.15, omitShape: 0.15 },
    steps: 1500,
    lr: 1e-4,
    warmup: 50,
    flowShift: 1.5,
    checkpointEvery: 250,
  },
  // A seventh run from the sixth one's float32 weights on captions that leave the colour out twice as often (omit
  // colour 0.3, shape 0.2), so the shape words must carry the shape without their colour: held-out attributes
  // 82.2% -> 86.5% in 16 bits (shape 36 -> 43 of 64, count 8 -> 10 of 16; 86.1% after 1000 steps, 87.5% at 2000).
  transformerShapes: {
    images: 24000,
    dataSeed: 9,
    kinds: { single: 0.35, relation: 0.25, count: 0.4 },
    captions: { positionFirst: 0, omitColor: 0.3, omitShape: 0.2 },
    steps: 3000,
    lr: 1e-4,
    warmup: 50,
    flowShift: 1.5,
    checkpointEvery: 250,
  },
  textEncoderSeed: 7,
} as const;

/** One transformer run of the recipe: its RECIPE entry and where its data, base and output live. */
interface TransformerStage {
  readonly settings: StageSettings;
  /** Its data folder under the working folder (a set of its own, or an earlier run's). */
  readonly data: string;
  /** Its output folder under the working folder. */
  readonly out: string;
  /** The pipeline it starts from, given the previous run's latest checkpoint (made here when it is derived). */
  readonly base: (previous: string) => string;
}

/** The RECIPE fields a transformer run reads. */
interface StageSettings {
  readonly steps: number;
  readonly lr: number;
  readonly warmup: number;
  readonly checkpointEvery: number;
  /** A data set of its own: size, seed and the generator's options. */
  readonly images?: number;
  readonly dataSeed?: number;
  readonly kinds?: KindWeights;
  readonly captions?: CaptionOptions;
  /** Training flow shift (the scheduler's when absent). */
  readonly flowShift?: number;
}

export async function trainDefaultModel(o: RecipeOptions): Promise<void> {
  const q = o.quick ? 0.01 : 1;
  const steps = (n: number) => Math.max(2, Math.round(n * q));
  const count = (n: number) => Math.max(24, Math.round(n * q));
  fs.mkdirSync(o.work, { recursive: true });
  const work = (name: string) => path.join(o.work, name);
  const vaeData = work('shapes-vae');
  const base = work('base');
  const r = RECIPE;
  /** A base derived from the previous run's checkpoint by `write`, made once (a complete folder is kept). */
  const derived = (name: string, write: (pipeline: string, out: string) => void) => (previous: string) => {
    const dir = work(name);
    if (!fs.existsSync(path.join(dir, 'model_index.json'))) write(previous, dir);
    return dir;
  };
  // 4. The transformer, then 5. a warm restart from its weights, then 6. another with the composable text encoder,
  //    then 7. a relation-heavy one, 8. one with the marking text encoder, 9. a count-heavy one and 10. one on
  //    colour-sparse captions (the CLI's defaults for everything not in the recipe). Each starts from the one before.
  const stages: TransformerStage[] = [
    { settings: r.transformer, data: 'shapes', out: 'transformer', base: () => base },
    { settings: r.transformerRefine, data: 'shapes', out: 'transformer-refine', base: (previous) => previous },
    // the second run's pipeline with the composable encoder, all in 16 bits: trained with the weights that ship
    { settings: r.transformerCompose, data: 'shapes-compose', out: 'transformer-compose', base: derived('base-compose', writeComposableBase) },
    // from the third run's weights in 16 bits (the weights that shipped before it)
    { settings: r.transformerRelations, data: 'shapes-relations', out: 'transformer-relations', base: derived('base-relations', exportPipeline) },
    { settings: r.transformerMarked, data: 'shapes-marked', out: 'transformer-marked', base: derived('base-marked', writeMarkedBase) },
    // from the fifth run's weights in 16 bits (the weights that shipped before it)
    { settings: r.transformerCount, data: 'shapes-count', out: 'transformer-count', base: derived('base-count', exportPipeline) },
    // straight from the sixth run's float32 checkpoint
    { settings: r.transformerShapes, data: 'shapes-colorless', out: 'transformer-shapes', base: (previous) => previous },
  ];

  // 1. Data: a small set for the autoencoder (crops), larger ones for the transformer runs; disjoint seeds. A folder
  //    with captions.jsonl is complete (writeShapesDataset writes it last), so an interrupted recipe keeps it.
  const ensureShapes = (dir: string, images: number, seed: number, kinds?: KindWeights, captions?: CaptionOptions) => {
    if (fs.existsSync(path.join(dir, CAPTIONS_FILE))) return;
    o.progress?.stage(`writing ${images} images to ${dir}`);
    writeShapesDataset(dir, { count: images, seed, size: DEFAULT_IMAGE_SIZE, split: 'train', kinds, captions });
  };
  ensureShapes(vaeData, count(r.vae.images + r.vae.validation), 1);
  for (const { settings: s, data } of stages) {
    if (s.images !== undefined && s.dataSeed !== undefined) ensureShapes(work(data), count(s.images), s.dataSeed, s.kinds, s.captions);
  }

  // 2. The autoencoder.
  const vaeOut = work('vae');
  const vaeSteps = steps(r.vae.steps);
  await trainVae({
    data: vaeData,
    out: vaeOut,
    config: DEFAULT_VAE_CONFIG as unknown as Record<string, unknown>,
    steps: vaeSteps,
    batch: r.vae.batch,
    crop: r.vae.crop,
    imageSize: DEFAULT_IMAGE_SIZE,
    lr: r.vae.lr,
    warmupSteps: Math.min(r.vae.warmup, vaeSteps - 1),
    decay: 'cosine',
    weightDecay: 0.01,
    maxGradNorm: 1,
    seed: r.seed,
    checkpointEvery: Math.min(r.vae.checkpointEvery, vaeSteps),
    validationImages: o.quick ? 4 : r.vae.validation,
    threads: o.threads,
    resume: true,
    progress: o.progress,
  });

  const refineOut = work('vae-ft');
  const refineSteps = steps(r.vaeRefine.steps);
  await trainVae({
    data: vaeData,
    out: refineOut,
    init: path.join(vaeOut, 'checkpoint-latest', 'vae'),
    steps: refineSteps,
    batch: r.vae.batch,
    crop: r.vae.crop,
    imageSize: DEFAULT_IMAGE_SIZE,
    lr: r.vaeRefine.lr,
    warmupSteps: Math.min(r.vaeRefine.warmup, refineSteps - 1),
    decay: 'cosine',
    weightDecay: 0.01,
    maxGradNorm: 1,
    seed: r.seed,
    checkpointEvery: Math.min(r.vaeRefine.checkpointEvery, refineSteps),
    validationImages: o.quick ? 4 : r.vae.validation,
    threads: o.threads,
    resume: true,
    progress: o.progress,
  });

  // 3. The base pipeline: the autoencoder with its latent scaling factor (1 / std of the training latents, as
  //    Stable Diffusion and DC-AE derive theirs), the seeded text encoder and its tokenizer, the scheduler.
  if (!fs.existsSync(path.join(base, 'model_index.json'))) {
    const vaeDir = path.join(refineOut, 'checkpoint-latest', 'vae');
    const scale = await latentScalingFactor(vaeDir, work(stages[0].data), o.threads);
    o.progress?.stage(`latent scaling factor ${scale.toFixed(5)}`);
    const tmp = `${base}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.cpSync(vaeDir, path.join(tmp, 'vae'), { recursive: true });
    const vaeConfigFile = path.join(tmp, 'vae', 'config.json');
    const vaeConfig = readJsonFile(vaeConfigFile);
    writeBytesAtomic(vaeConfigFile, `${JSON.stringify({ ...vaeConfig, scaling_factor: Number(scale.toFixed(5)) }, null, 2)}\n`);
    const tokenizer = writeShapesTokenizer(path.join(tmp, 'tokenizer'));
    writeSeededGemma2(path.join(tmp, 'text_encoder'), { seed: r.textEncoderSeed, vocabSize: tokenizer.vocabSize });
    fs.mkdirSync(path.join(tmp, 'scheduler'));
    writeBytesAtomic(path.join(tmp, 'scheduler', 'scheduler_config.json'), `${JSON.stringify(DEFAULT_SCHEDULER_CONFIG, null, 2)}\n`);
    writeBytesAtomic(path.join(tmp, 'model_index.json'), `${JSON.stringify(MODEL_INDEX, null, 2)}\n`);
    // the untrained transformer completes the pipeline folder (the trainer starts from the same seeded weights)
    const transformerConfig = DEFAULT_TRANSFORMER_CONFIG as unknown as Record<string, unknown>;
    writeDiffusersComponent(path.join(tmp, 'transformer'), transformerConfig, initializeSanaTransformer(parseSanaTransformerConfig(transformerConfig, 'default transformer'), r.seed));
    fs.renameSync(tmp, base);
  }

  // 4.-10. The transformer runs.
  /** What every transformer run shares. */
  const transformerRun = (stage: StageSettings) => {
    const n = steps(stage.steps);
    return {
      steps: n,
      batch: o.quick ? 4 : r.transformer.batch,
      lr: stage.lr,
      warmupSteps: Math.min(stage.warmup, n - 1),
      decay: 'cosine' as const,
      weightDecay: 0.01,
      maxGradNorm: 1,
      emaDecay: r.transformer.emaDecay,
      captionDropout: 0.1,
      logitMean: 0,
      logitStd: 1,
      flowShift: stage.flowShift,
      imageSize: DEFAULT_IMAGE_SIZE,
      maxSequenceLength: 300,
      seed: r.seed,
      checkpointEvery: Math.min(stage.checkpointEvery, n),
      validationSteps: 20,
      threads: o.threads,
      resume: true,
      progress: o.progress,
    };
  };
  let previous = '';
  for (const [i, stage] of stages.entries()) {
    const out = work(stage.out);
    await trainTransformer({
      ...transformerRun(stage.settings),
      data: work(stage.data),
      out,
      base: stage.base(previous),
      // the first run writes the transformer config and shows a few held-out prompts as it trains
      ...(i === 0
        ? {
            transformerConfig: DEFAULT_TRANSFORMER_CONFIG as unknown as Record<string, unknown>,
            validationPrompts: evaluationPrompts()
              .filter((_, k) => k % 12 === 0)
              .map((p) => p.prompt),
          }
        : { validationPrompts: [] }),
    });
    previous = path.join(out, 'checkpoint-latest');
  }

  // 11. Export with 16-bit weights.
  exportPipeline(previous, o.out);
  o.progress?.stage(`wrote the pipeline to ${o.out} (${(folderBytes(o.out) / 1e6).toFixed(1)} MB)`);
}

/**
 * The third run's base: `pipeline` (the second run's checkpoint) with its text encoder rewritten in the composable
 * form (same seed and vocabulary; see RECIPE.transformerCompose), exported to 16 bits.
 */
export function writeComposableBase(pipeline: string, out: string): void {
  writeBaseWithEncoder(pipeline, out, () => ({}));
}

/**
 * The fifth run's base: `pipeline` (a checkpoint or an exported pipeline folder) with its text encoder rewritten in
 * the marking form (same seed and vocabulary; see RECIPE.transformerMarked), exported to 16 bits.
 */
export function writeMarkedBase(pipeline: string, out: string): void {
  writeBaseWithEncoder(pipeline, out, (tmp) => ({
    identityChannels: RECIPE.transformerMarked.identityChannels,
    markedTokens: relationMarkerTokens(GemmaTokenizer.fromFolder(path.join(tmp, 'tokenizer'))),
  }));
}

/**
 * `pipeline` copied with its text encoder re-seeded in the composable form (the recipe's seed, the copy's vocabulary)
 * plus the options `extra` reads off the copy, exported to 16 bits as `out`.
 */
function writeBaseWithEncoder(pipeline: string, out: string, extra: (tmp: string) => Partial<SeededGemma2Options>): void {
  // not exportPipeline's own temporary name
  const tmp = `${out}.source-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.cpSync(pipeline, tmp, { recursive: true, filter: (f) => !f.includes('.sana-ts-cache') });
  const vocabSize = readJsonFile(path.join(tmp, 'text_encoder', 'config.json')).vocab_size as number;
  writeSeededGemma2(path.join(tmp, 'text_encoder'), { seed: RECIPE.textEncoderSeed, vocabSize, composable: true, ...extra(tmp) });
  exportPipeline(tmp, out);
  fs.rmSync(tmp, { recursive: true, force: true });
}

/** 1 / std of the unscaled latents of (up to) 256 images of the folder. */
async function latentScalingFactor(vaeDir: string, data: string, threads?: number): Promise<number> {
  const records = readCaptionFolder(data).slice(0, 256);
  const dcae = await Dcae.load(vaeDir, { parts: ['encoder'], threads });
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  try {
    for (const r of records) {
      const z = (await dcae.encode(HostTensor.float32([1, 3, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE], loadTrainingImage(data, r, DEFAULT_IMAGE_SIZE)))).data as Float32Array;
      for (const v of z) {
        sum += v;
        sumSq += v * v;
      }
      n += z.length;
    }
  } finally {
    await dcae.release();
  }
  const mean = sum / n;
  return 1 / Math.sqrt(sumSq / n - mean * mean);
}

/** Copies a pipeline checkpoint without the training state, with float32 weights stored as float16. */
export function exportPipeline(checkpoint: string, out: string): void {
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.cpSync(checkpoint, tmp, { recursive: true, filter: (f) => !f.endsWith('training_state.safetensors') && !f.includes('.sana-ts-cache') });
  for (const [component, file] of [['transformer', 'diffusion_pytorch_model.safetensors'], ['vae', 'diffusion_pytorch_model.safetensors'], ['text_encoder', 'model.safetensors']]) {
    const p = path.join(tmp, component, file);
    const half = new Map<string, HostTensor>();
    for (const [name, t] of readSafetensors(p)) {
      const f = t.toFloat32();
      const h = new Uint16Array(f.length);
      for (let i = 0; i < f.length; i++) h[i] = floatToHalf(f[i]);
      half.set(name, new HostTensor('float16', t.shape, h));
    }
    writeSafetensors(p, half, { format: 'pt' });
  }
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.renameSync(tmp, out);
}

/** Bytes of every file under `dir`. */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? folderBytes(p) : fs.statSync(p).size;
  }
  return total;
}
