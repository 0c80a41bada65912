// Training SANA's transformer with the rectified-flow objective on a caption folder: the autoencoder and text
// encoder of a base pipeline folder stay frozen (latents and caption states cached once, embedding-cache.ts); per
// step, logit-normal sigmas with the flow shift, x_t = (1 - sigma) x0 + sigma noise, target noise - x0, MSE, and
// 10% of captions replaced by the empty prompt's embedding (so classifier-free guidance works). Checkpoints are
// whole pipeline folders (loadable by `sana generate --model`) with the optimizer and EMA state to resume exactly;
// validation images from fixed prompts and seeds at every checkpoint.
// ref: SANA.md §6; issue "Training on our engine" (trainer b)

import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostTensor } from '../io/host-tensor.js';
import { WeightStore, findWeights } from '../io/weights.js';
import { readDcaeConfig } from '../models/dcae/config.js';
import { readJsonFile } from '../io/config.js';
import { parseSanaTransformerConfig, readSanaTransformerConfig } from '../models/sana/config.js';
import { LoraTrainingSpec, TrainableLora } from '../nn/lora-trainable.js';
import { writeSafetensors } from '../io/safetensors.js';
import { loadSanaPipeline } from '../pipeline/components.js';
import { resolvePipelineFolder } from '../pipeline/model-folder.js';
import { toRgbImages } from '../pipeline/postprocess.js';
import { fillRandn } from '../random/torch-rng.js';
import { readSchedulerConfig } from '../schedulers/scheduler-config.js';
import { readCaptionFolder } from './caption-folder.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { loadOrBuildEmbeddingCache } from './embedding-cache.js';
import { FLOW_INPUTS, buildFlowMatchingGraph } from './flow-matching-objective.js';
import { initializeSanaTransformer, sanaParameterShapes, writeDiffusersComponent } from './initialize.js';
import { MetricsLog } from './metrics-log.js';
import { AdamW, LearningRateSchedule, WeightEma, clipGradNorm, learningRate } from './optimizer.js';
import { TrainProgress, stepGenerator } from './progress.js';
import { TrainSession, readParameters } from './train-graph.js';
import { writeLossCurve } from './loss-curve.js';
import { writeImageGrid } from './image-grid.js';

export interface TransformerTrainOptions {
  readonly data: string;
  readonly out: string;
  /** Pipeline folder with vae/, text_encoder/, tokenizer/, scheduler/ (and transformer/ to fine-tune). */
  readonly base: string;
  /** SanaTransformer2DModel config.json contents to train a new transformer; default: fine-tune base's. */
  readonly transformerConfig?: Record<string, unknown>;
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  readonly warmupSteps: number;
  readonly decay: 'constant' | 'cosine';
  readonly weightDecay: number;
  readonly maxGradNorm: number | null;
  /** EMA of the weights (what checkpoints ship); null = none. */
  readonly emaDecay: number | null;
  readonly captionDropout: number;
  readonly logitMean: number;
  readonly logitStd: number;
  /** Training flow shift; default the base scheduler's flow_shift. */
  readonly flowShift?: number;
  readonly imageSize: number;
  readonly maxSequenceLength: number;
  readonly seed: number;
  readonly checkpointEvery: number;
  readonly validationPrompts: readonly string[];
  readonly validationSteps: number;
  readonly threads?: number;
  readonly resume?: boolean;
  /** Stop after this step (with a checkpoint) although the schedule runs to `steps`: training in sessions. */
  readonly stopAfter?: number;
  readonly progress?: TrainProgress;
  /**
   * Fine-tune LoRA adapters of the base transformer instead of its weights (which stay frozen): checkpoints are
   * then an adapter file, `checkpoint-latest/pytorch_lora_weights.safetensors`, for `sana generate --lora`.
   */
  readonly lora?: LoraTrainingSpec;
}

export interface TransformerTrainResult {
  readonly step: number;
  readonly checkpoint: string;
  readonly seconds: number;
  readonly finalLoss: number;
}

const LOG_COLUMNS = ['step', 'loss', 'lr', 'grad_norm', 'samples_per_s', 'seconds'];
const LATEST = 'checkpoint-latest';
/** The adapter file of a LoRA checkpoint (diffusers' name for it). */
export const LORA_WEIGHTS_FILE = 'pytorch_lora_weights.safetensors';

/** Logit-normal sigma with the flow shift: u = sigmoid(n), sigma = s u / (1 + (s - 1) u). */
export function shiftedSigma(n: number, shift: number): number {
  const u = 1 / (1 + Math.exp(-n));
  const sigma = (shift * u) / (1 + (shift - 1) * u);
  return Math.min(Math.max(sigma, 1e-4), 1);
}

export async function trainTransformer(o: TransformerTrainOptions): Promise<TransformerTrainResult> {
  const t0 = performance.now();
  const records = readCaptionFolder(o.data);
  const base = resolvePipelineFolder(o.base);
  const { vae: vaeDir, scheduler: schedulerDir, text_encoder: textDir, tokenizer: tokenizerDir } = base.components;
  if (!textDir || !tokenizerDir) throw new Error(`base model ${base.root} has no text encoder and tokenizer`);
  const vae = readDcaeConfig(path.join(vaeDir, 'config.json'));
  const schedulerConfig = readSchedulerConfig(schedulerDir);
  if (schedulerConfig.kind === 'scm') {
    throw new Error(`base model ${base.root} is a SANA-Sprint pipeline (SCMScheduler): sana train trains flow-matching models only`);
  }
  const flowShift = o.flowShift ?? schedulerConfig.flowShift;
  fs.mkdirSync(o.out, { recursive: true });
  const latest = path.join(o.out, LATEST);

  let start = 0;
  let componentDir: string;
  let optimizer = new AdamW({ betas: [0.9, 0.999], eps: 1e-8, weightDecay: o.weightDecay });
  let values: Map<string, Float32Array> | undefined;
  let ema: WeightEma | undefined;
  if (o.lora && o.transformerConfig) {
    throw new Error('LoRA training fine-tunes the base transformer; a transformer config starts a new one: give one of the two');
  }
  if (o.resume && fs.existsSync(latest)) {
    const c = loadCheckpoint(latest);
    const wasLora = path.basename(c.componentDir) === 'lora';
    if (wasLora !== Boolean(o.lora)) {
      throw new Error(`--resume: ${latest} is a ${wasLora ? 'LoRA' : 'full transformer'} checkpoint; resume it ${wasLora ? 'with' : 'without'} --lora-rank, or use a new --out`);
    }
    ({ step: start, optimizer, values, ema } = c);
    componentDir = o.lora ? base.components.transformer : c.componentDir;
  } else if (o.transformerConfig) {
    componentDir = path.join(o.out, 'init', 'transformer');
    const config = parseSanaTransformerConfig(o.transformerConfig, 'transformer config');
    writeDiffusersComponent(componentDir, o.transformerConfig, initializeSanaTransformer(config, o.seed));
  } else {
    componentDir = base.components.transformer;
  }
  const config = readSanaTransformerConfig(componentDir);
  // the checked reader (contained in its folder, bounded size, errors naming the file and key), as every config
  const rawConfig = readJsonFile(path.join(componentDir, 'config.json'));
  if (config.inChannels !== vae.latentChannels) throw new Error(`transformer in_channels ${config.inChannels} differs from the VAE's latent_channels ${vae.latentChannels}`);

  const cache = await loadOrBuildEmbeddingCache(
    path.join(o.out, 'cache'),
    { data: o.data, records, vaeDir, textEncoderDir: textDir, tokenizerDir, imageSize: o.imageSize, maxSequenceLength: o.maxSequenceLength, threads: o.threads },
    o.progress,
  );
  const [n, c, h, w] = cache.latents.shape;
  const [, tokens, hidden] = cache.captions.shape;
  if (hidden !== config.captionChannels) throw new Error(`the text encoder's width ${hidden} differs from the transformer's caption_channels ${config.captionChannels}`);

  const store = WeightStore.open(findWeights(componentDir, ['diffusion_pytorch_model']));
  const lora = o.lora ? new TrainableLora(o.lora) : undefined;
  const trainable = buildFlowMatchingGraph(config, store, { batch: o.batch, height: h, width: w, tokens }, { lora });
  if (lora && values) checkResumedLora(latest, values, lora);
  values ??= lora ? lora.initialValues(o.seed) : readParameters(store, trainable.params);
  if (o.emaDecay !== null) ema ??= new WeightEma(o.emaDecay, values);
  const shapes = lora ? lora.shapes() : sanaParameterShapes(config);
  const session = await TrainSession.create(trainable, values, { threads: o.threads });

  const logFile = path.join(o.out, 'metrics.csv');
  const log = start > 0 && fs.existsSync(logFile) ? MetricsLog.open(logFile, LOG_COLUMNS).log : MetricsLog.create(logFile, LOG_COLUMNS);
  log.truncateAfter(start);
  const schedule: LearningRateSchedule = { peak: o.lr, warmupSteps: o.warmupSteps, decay: o.decay, totalSteps: o.steps };
  const scale = vae.scalingFactor;
  const latentSize = c * h * w;
  const x0 = new Float32Array(o.batch * latentSize);
  const noise = new Float32Array(o.batch * latentSize);
  const sigmas = new Float32Array(o.batch);
  const captions = new Float32Array(o.batch * tokens * hidden);
  const masks = new BigInt64Array(o.batch * tokens);
  const modelIndex = fs.readFileSync(path.join(base.root, 'model_index.json'), 'utf8');
  const copyFolders = { vae: vaeDir, text_encoder: textDir, tokenizer: tokenizerDir, scheduler: schedulerDir };
  let lastLoss = NaN;
  try {
    o.progress?.stage(`training the transformer: steps ${start + 1}..${o.steps}, batch ${o.batch}, ${n} examples, flow shift ${flowShift}`);
    let tStep = performance.now();
    const end = Math.min(o.steps, o.stopAfter ?? o.steps);
    for (let step = start + 1; step <= end; step++) {
      const g = stepGenerator(o.seed, step);
      fillRandn(noise, g);
      const normals = fillRandn(new Float32Array(o.batch), g);
      for (let b = 0; b < o.batch; b++) {
        const i = Math.floor(g.uniformFloat32() * n) % n;
        const src = cache.latents.data.subarray(i * latentSize, (i + 1) * latentSize);
        for (let k = 0; k < latentSize; k++) x0[b * latentSize + k] = src[k] * scale;
        sigmas[b] = shiftedSigma(normals[b], flowShift);
        const drop = g.uniformFloat32() < o.captionDropout;
        const capSrc = drop ? cache.nullCaption.data : cache.captions.data.subarray(i * tokens * hidden, (i + 1) * tokens * hidden);
        const maskSrc = drop ? cache.nullMask.data : cache.masks.data.subarray(i * tokens, (i + 1) * tokens);
        captions.set(capSrc, b * tokens * hidden);
        masks.set(maskSrc, b * tokens);
      }
      const out = await session.run({
        [FLOW_INPUTS.x0]: HostTensor.float32([o.batch, c, h, w], x0),
        [FLOW_INPUTS.noise]: HostTensor.float32([o.batch, c, h, w], noise),
        [FLOW_INPUTS.sigmas]: HostTensor.float32([o.batch], sigmas),
        [FLOW_INPUTS.caption]: HostTensor.float32([o.batch, tokens, hidden], captions),
        [FLOW_INPUTS.mask]: new HostTensor('int64', [o.batch, tokens], masks),
      });
      if (!Number.isFinite(out.loss)) throw new Error(`train: the loss became ${out.loss} at step ${step}; lower --lr`);
      const clip = clipGradNorm(trainable.params.map((p) => out.grads.get(p.key)!), o.maxGradNorm);
      const lr = learningRate(schedule, step);
      optimizer.update(session.values, out.grads, lr);
      ema?.update(session.values);
      lastLoss = out.loss;
      const now = performance.now();
      const samplesPerS = (o.batch * 1000) / (now - tStep);
      tStep = now;
      log.append({ step, loss: out.loss, lr, grad_norm: clip.totalNorm, samples_per_s: samplesPerS, seconds: (now - t0) / 1000 });
      o.progress?.step(step, o.steps, { loss: out.loss, samplesPerS, lr });
      if (step % o.checkpointEvery === 0 || step === end) {
        saveCheckpoint(latest, {
          step,
          component: lora ? 'lora' : 'transformer',
          config: rawConfig,
          shapes,
          values: session.values,
          optimizer,
          ema,
          ...(lora
            ? { writeModel: (dir, weights) => writeSafetensors(path.join(dir, LORA_WEIGHTS_FILE), lora.exportTensors(weights), { format: 'pt' }) }
            : { copyFolders, files: { 'model_index.json': modelIndex } }),
        });
        if (o.validationPrompts.length) {
          const png = path.join(o.out, `validation-${String(step).padStart(6, '0')}.png`);
          if (lora) await validationImages(base.root, o.validationPrompts, o.validationSteps, png, o.threads, [path.join(latest, LORA_WEIGHTS_FILE)]);
          else await validationImages(latest, o.validationPrompts, o.validationSteps, png, o.threads);
        }
        o.progress?.stage(`step ${step}: checkpoint ${latest}`);
      }
    }
  } finally {
    await session.release();
  }
  writeLossCurve(log, path.join(o.out, 'loss.png'), 'SANA flow-matching loss');
  return { step: Math.min(o.steps, o.stopAfter ?? o.steps), checkpoint: latest, seconds: (performance.now() - t0) / 1000, finalLoss: lastLoss };
}

/** Generates one image per prompt (seed = its index) with a checkpoint and writes them side by side. */
export async function validationImages(
  pipelineDir: string,
  prompts: readonly string[],
  steps: number,
  png: string,
  threads?: number,
  loraFiles: readonly string[] = [],
): Promise<void> {
  const { pipeline } = await loadSanaPipeline(pipelineDir, { threads, keepResident: true, loras: loraFiles.map((file) => ({ file })) });
  try {
    const images = [];
    for (let i = 0; i < prompts.length; i++) {
      const r = await pipeline.run({ prompts: [prompts[i]], seed: i, steps, binning: false });
      images.push(toRgbImages(r.images)[0]);
    }
    writeImageGrid(png, images);
  } finally {
    await pipeline.release();
  }
}

/** A resumed LoRA run must train the same adapters (targets and rank) as the checkpoint holds. */
function checkResumedLora(checkpoint: string, values: ReadonlyMap<string, Float32Array>, lora: TrainableLora): void {
  const expected = lora.shapes();
  const have = [...values.keys()].sort();
  const want = [...expected.keys()].sort();
  const same = have.length === want.length && have.every((k, i) => k === want[i] && values.get(k)!.length === expected.get(k)!.reduce((a, d) => a * d, 1));
  if (!same) {
    throw new Error(
      `--resume: ${checkpoint} holds ${have.length} LoRA tensors that differ from the ${want.length} of rank ${lora.spec.rank} on ${lora.spec.targets.join(', ')}; resume with the same --lora-rank and --lora-targets, or use a new --out`,
    );
  }
}
