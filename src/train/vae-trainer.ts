// Training the DC-AE autoencoder on a caption folder's images: random square crops (the autoencoder is
// convolutional, so crops smaller than the images train it for every size at a fraction of the cost), the L1 + L2
// reconstruction objective, AdamW with clipping and a warmup + cosine schedule, checkpoints that resume exactly,
// and validation PSNR on held-out full-size images (with a side-by-side PNG of originals and reconstructions).
// ref: SANA.md §3; issue "Training on our engine" (trainer a)

import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostTensor } from '../io/host-tensor.js';
import { denormalize, toRgbImages } from '../pipeline/postprocess.js';
import { writeImageGrid } from './image-grid.js';
import { reconstruct } from './reconstruction.js';
import { WeightStore, findWeights } from '../io/weights.js';
import { parseDcaeConfig, readDcaeConfig } from '../models/dcae/config.js';
import { ConfigReader, readJsonFile } from '../io/config.js';
import { Dcae } from '../models/dcae/model.js';
import { loadTrainingImage, readCaptionFolder } from './caption-folder.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { buildDcaeReconstructionGraph, isDecoderKey, RECON_INPUTS } from './dcae-objective.js';
import { dcaeParameterShapes, initializeDcae, writeDiffusersComponent } from './initialize.js';
import { MetricsLog } from './metrics-log.js';
import { AdamW, LearningRateSchedule, clipGradNorm, learningRate } from './optimizer.js';
import { writeLossCurve } from './loss-curve.js';
import { TrainSession, readParameters } from './train-graph.js';
import { TrainProgress, stepGenerator } from './progress.js';

export interface VaeTrainOptions {
  readonly data: string;
  readonly out: string;
  /** A diffusers AutoencoderDC config.json to start from scratch, or a folder with weights to fine-tune. */
  readonly config?: Record<string, unknown>;
  readonly init?: string;
  /**
   * Train the decoder alone, the encoder frozen: its latents stay exactly what a transformer trained on them
   * expects, so a finished pipeline's decoder can be sharpened without retraining the transformer.
   */
  readonly freezeEncoder?: boolean;
  /** Weight of the edge term of the loss (dcae-objective.ts); default 0 (L1 + L2 only). */
  readonly edgeWeight?: number;
  readonly steps: number;
  readonly batch: number;
  /** Side of the square training crops (a multiple of the compression ratio). */
  readonly crop: number;
  /** Size the images are brought to before cropping. */
  readonly imageSize: number;
  readonly lr: number;
  readonly warmupSteps: number;
  readonly decay: 'constant' | 'cosine';
  readonly weightDecay: number;
  readonly maxGradNorm: number | null;
  readonly seed: number;
  readonly checkpointEvery: number;
  /** Images from the end of the folder held out for validation. */
  readonly validationImages: number;
  readonly threads?: number;
  readonly resume?: boolean;
  /** Stop after this step (with a checkpoint) although the schedule runs to `steps`: training in sessions. */
  readonly stopAfter?: number;
  readonly progress?: TrainProgress;
}

export interface VaeTrainResult {
  readonly step: number;
  readonly validationPsnr: number;
  readonly checkpoint: string;
  readonly seconds: number;
}

const LOG_COLUMNS = ['step', 'loss', 'lr', 'grad_norm', 'samples_per_s', 'seconds', 'val_psnr'];
const LATEST = 'checkpoint-latest';

export async function trainVae(o: VaeTrainOptions): Promise<VaeTrainResult> {
  const t0 = performance.now();
  const records = readCaptionFolder(o.data);
  if (records.length <= o.validationImages) throw new Error(`data folder ${o.data}: ${records.length} images, need more than the ${o.validationImages} held out`);
  const train = records.slice(0, records.length - o.validationImages);
  const validation = records.slice(records.length - o.validationImages);
  fs.mkdirSync(o.out, { recursive: true });
  const latest = path.join(o.out, LATEST);

  // Weights: resume, fine-tune a given model, or a new one from a config.
  let start = 0;
  let componentDir: string;
  let optimizer = new AdamW({ betas: [0.9, 0.999], eps: 1e-8, weightDecay: o.weightDecay });
  let values: Map<string, Float32Array> | undefined;
  if (o.resume && fs.existsSync(latest)) {
    const c = loadCheckpoint(latest);
    start = c.step;
    optimizer = c.optimizer;
    values = c.values;
    componentDir = c.componentDir;
  } else if (o.init) {
    componentDir = o.init;
  } else {
    if (!o.config) throw new Error('train-vae: give a config (--config) or weights to start from (--init)');
    componentDir = path.join(o.out, 'init', 'vae');
    const config = parseDcaeConfig(new ConfigReader('--config', o.config));
    writeDiffusersComponent(componentDir, o.config, initializeDcae(config, o.seed));
  }
  const config = readDcaeConfig(path.join(componentDir, 'config.json'));
  // the checked reader (contained in its folder, bounded size, errors naming the file and key), as every config
  const rawConfig = readJsonFile(path.join(componentDir, 'config.json'));
  if (o.crop % config.spatialCompressionRatio || o.imageSize % config.spatialCompressionRatio) {
    throw new Error(`--crop ${o.crop} and --image-size ${o.imageSize} must be multiples of the compression ratio ${config.spatialCompressionRatio}`);
  }
  if (o.crop > o.imageSize) throw new Error(`--crop ${o.crop} is larger than --image-size ${o.imageSize}`);
  const store = WeightStore.open(findWeights(componentDir, ['diffusion_pytorch_model']));
  const trainable = buildDcaeReconstructionGraph(config, store, { batch: o.batch, height: o.crop, width: o.crop }, {
    trainable: o.freezeEncoder ? 'decoder' : 'all',
    edgeWeight: o.edgeWeight,
  });
  values ??= readParameters(store, trainable.params);
  const shapes = dcaeParameterShapes(config);
  // A frozen encoder is not in `values` (nothing trains it): checkpoints write it back from the starting weights.
  const frozen = new Map<string, HostTensor>();
  if (o.freezeEncoder) {
    for (const [key, shape] of shapes) if (!isDecoderKey(key)) frozen.set(key, HostTensor.float32(shape, Float32Array.from(store.read(key).toFloat32())));
  }
  const writeModel = o.freezeEncoder
    ? (dir: string, weights: ReadonlyMap<string, Float32Array>) => {
        const all = new Map(frozen);
        for (const [key, v] of weights) all.set(key, HostTensor.float32(shapes.get(key)!, v));
        writeDiffusersComponent(path.join(dir, 'vae'), rawConfig, all);
      }
    : undefined;
  const session = await TrainSession.create(trainable, values, { threads: o.threads });

  o.progress?.stage(`loading ${train.length} training images from ${o.data}`);
  const images = train.map((r) => loadTrainingImage(o.data, r, o.imageSize));
  const validationImages = validation.map((r) => loadTrainingImage(o.data, r, o.imageSize));
  const logFile = path.join(o.out, 'metrics.csv');
  const log = start > 0 && fs.existsSync(logFile) ? MetricsLog.open(logFile, LOG_COLUMNS).log : MetricsLog.create(logFile, LOG_COLUMNS);
  log.truncateAfter(start);
  const schedule: LearningRateSchedule = { peak: o.lr, warmupSteps: o.warmupSteps, decay: o.decay, totalSteps: o.steps };
  const crop = o.crop;
  const size = o.imageSize;
  const batch = new Float32Array(o.batch * 3 * crop * crop);
  let psnr = NaN;
  const checkpoint = async (step: number) => {
    saveCheckpoint(latest, { step, component: 'vae', config: rawConfig, shapes, values: session.values, optimizer, writeModel });
    psnr = await validate(latest, validationImages, size, path.join(o.out, `validation-${String(step).padStart(6, '0')}.png`), o.threads);
    o.progress?.stage(`step ${step}: checkpoint ${latest}, validation PSNR ${psnr.toFixed(2)} dB`);
  };
  try {
    o.progress?.stage(`training the autoencoder${o.freezeEncoder ? "'s decoder (encoder frozen)" : ''}: steps ${start + 1}..${o.steps}, batch ${o.batch} crops of ${crop} px`);
    let tStep = performance.now();
    const end = Math.min(o.steps, o.stopAfter ?? o.steps);
    for (let step = start + 1; step <= end; step++) {
      const g = stepGenerator(o.seed, step);
      for (let b = 0; b < o.batch; b++) {
        const img = images[Math.floor(g.uniformFloat32() * images.length) % images.length];
        const top = Math.floor(g.uniformFloat32() * (size - crop + 1));
        const left = Math.floor(g.uniformFloat32() * (size - crop + 1));
        const flip = g.uniformFloat32() < 0.5;
        for (let c = 0; c < 3; c++) {
          for (let y = 0; y < crop; y++) {
            const src = (c * size + top + y) * size + left;
            const dst = ((b * 3 + c) * crop + y) * crop;
            if (!flip) batch.set(img.subarray(src, src + crop), dst);
            else for (let x = 0; x < crop; x++) batch[dst + x] = img[src + crop - 1 - x];
          }
        }
      }
      const out = await session.run({ [RECON_INPUTS.image]: HostTensor.float32([o.batch, 3, crop, crop], batch) });
      const clip = clipGradNorm(trainable.params.map((p) => out.grads.get(p.key)!), o.maxGradNorm);
      const lr = learningRate(schedule, step);
      optimizer.update(session.values, out.grads, lr);
      const now = performance.now();
      const samplesPerS = (o.batch * 1000) / (now - tStep);
      tStep = now;
      if (!Number.isFinite(out.loss)) throw new Error(`train-vae: the loss became ${out.loss} at step ${step}; lower --lr`);
      const last = step === end;
      const validating = step % o.checkpointEvery === 0 || last;
      if (validating) await checkpoint(step);
      log.append({ step, loss: out.loss, lr, grad_norm: clip.totalNorm, samples_per_s: samplesPerS, seconds: (now - t0) / 1000, val_psnr: validating ? psnr : undefined });
      o.progress?.step(step, o.steps, { loss: out.loss, samplesPerS, lr });
    }
  } finally {
    await session.release();
  }
  writeLossCurve(log, path.join(o.out, 'loss.png'), o.edgeWeight ? `DC-AE reconstruction loss (L1 + L2 + ${o.edgeWeight} x edges)` : 'DC-AE reconstruction loss (L1 + L2)', 'val_psnr', 'validation PSNR (dB)');
  return { step: Math.min(o.steps, o.stopAfter ?? o.steps), validationPsnr: psnr, checkpoint: latest, seconds: (performance.now() - t0) / 1000 };
}

/**
 * PSNR (dB) of the checkpoint's reconstructions of the held-out images ([3, size, size] in [-1, 1]); writes the first
 * four as original | reconstruction pairs.
 */
export async function validate(checkpoint: string, images: readonly Float32Array[], size: number, png: string, threads?: number): Promise<number> {
  const dcae = await Dcae.load(path.join(checkpoint, 'vae'), { threads });
  try {
    const r = await reconstruct(dcae, images, size);
    const shown = Math.min(images.length, 4);
    const pairs = Array.from({ length: shown }, (_, i) => [images[i], r.images[i]]).flat();
    const planes = new Float32Array(pairs.length * 3 * size * size);
    pairs.forEach((p, k) => planes.set(p, k * 3 * size * size));
    writeImageGrid(png, toRgbImages(denormalize(HostTensor.float32([pairs.length, 3, size, size], planes))), 2);
    return r.psnr;
  } finally {
    await dcae.release();
  }
}
