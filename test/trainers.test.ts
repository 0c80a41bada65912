// The trainers end to end on tiny models: a resumed run continues the loss curve and the weights exactly where the
// uninterrupted run goes; checkpoints are loadable pipeline folders; data folders with problems are refused naming
// the line and file; the schedules and clipping follow their formulas.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { readCaptionFolder, loadTrainingImage } from '../src/train/caption-folder.js';
import { DEFAULT_SCHEDULER_CONFIG, MODEL_INDEX } from '../src/train/default-model/configs.js';
import { initializeSanaTransformer, writeDiffusersComponent } from '../src/train/initialize.js';
import { MetricsLog } from '../src/train/metrics-log.js';
import { clipGradNorm, learningRate } from '../src/train/optimizer.js';
import { writeShapesDataset } from '../src/train/shapes/dataset.js';
import { writeSeededGemma2, writeShapesTokenizer } from '../src/train/text-encoder/tiny-gemma.js';
import { TransformerTrainOptions, shiftedSigma, trainTransformer } from '../src/train/transformer-trainer.js';
import { VaeTrainOptions, trainVae } from '../src/train/vae-trainer.js';
import { parseSanaTransformerConfig } from '../src/models/sana/config.js';

const TINY_VAE = {
  _class_name: 'AutoencoderDC',
  in_channels: 3,
  latent_channels: 8,
  attention_head_dim: 8,
  encoder_block_types: ['ResBlock', 'ResBlock', 'ResBlock', 'EfficientViTBlock', 'EfficientViTBlock', 'EfficientViTBlock'],
  decoder_block_types: ['ResBlock', 'ResBlock', 'ResBlock', 'EfficientViTBlock', 'EfficientViTBlock', 'EfficientViTBlock'],
  encoder_block_out_channels: [8, 8, 8, 16, 16, 16],
  decoder_block_out_channels: [8, 8, 8, 16, 16, 16],
  encoder_layers_per_block: [0, 1, 1, 1, 1, 1],
  decoder_layers_per_block: [0, 1, 1, 1, 1, 1],
  encoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  decoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  upsample_block_type: 'interpolate',
  downsample_block_type: 'conv',
  decoder_norm_types: 'rms_norm',
  decoder_act_fns: 'silu',
  scaling_factor: 0.5,
};

const TINY_TRANSFORMER = {
  _class_name: 'SanaTransformer2DModel',
  in_channels: 8,
  out_channels: 8,
  num_attention_heads: 1,
  attention_head_dim: 32,
  num_layers: 1,
  num_cross_attention_heads: 1,
  cross_attention_head_dim: 32,
  cross_attention_dim: 32,
  caption_channels: 128,
  sample_size: 2,
  patch_size: 1,
  interpolation_scale: 1.0,
};

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-trainers-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const data = path.join(root, 'data');
before(() => writeShapesDataset(data, { count: 10, seed: 3, size: 64, split: 'train' }));

function vaeOptions(out: string, steps: number, stopAfter?: number): VaeTrainOptions {
  return {
    stopAfter,
    data,
    out,
    config: TINY_VAE,
    steps,
    batch: 2,
    crop: 64,
    imageSize: 64,
    lr: 1e-3,
    warmupSteps: 1,
    decay: 'cosine',
    weightDecay: 0.01,
    maxGradNorm: 1,
    seed: 5,
    checkpointEvery: 2,
    validationImages: 2,
    threads: 1,
    resume: true,
  };
}

function lossColumn(file: string): number[] {
  return MetricsLog.open(file).log.rows().map((r) => r.loss!);
}

describe('trainers', () => {
  it('train-vae: a run resumed from its step-2 checkpoint ends with the same losses and weights as an uninterrupted run', async () => {
    const straight = path.join(root, 'vae-straight');
    const resumed = path.join(root, 'vae-resumed');
    const full = await trainVae(vaeOptions(straight, 4));
    await trainVae(vaeOptions(resumed, 4, 2)); // interrupted after step 2
    await trainVae(vaeOptions(resumed, 4));
    assert.deepEqual(lossColumn(path.join(resumed, 'metrics.csv')), lossColumn(path.join(straight, 'metrics.csv')));
    assert.equal(lossColumn(path.join(straight, 'metrics.csv')).length, 4);
    const a = readSafetensors(path.join(straight, 'checkpoint-latest', 'training_state.safetensors'));
    const b = readSafetensors(path.join(resumed, 'checkpoint-latest', 'training_state.safetensors'));
    assert.deepEqual([...a.keys()], [...b.keys()]);
    for (const [k, t] of a) assert.deepEqual(b.get(k)!.data, t.data, `${k} after resuming`);
    assert.ok(Number.isFinite(full.validationPsnr) && full.validationPsnr > 0, `validation PSNR ${full.validationPsnr}`);
    for (const f of ['loss.png', 'validation-000004.png', 'checkpoint-latest/vae/config.json']) assert.ok(fs.existsSync(path.join(straight, f)), f);
  });

  it('train-vae --freeze-encoder: the encoder stays bit-exact (so do its latents), the decoder trains, and it resumes exactly', async () => {
    const init = path.join(root, 'vae-for-freeze');
    await trainVae(vaeOptions(init, 2));
    const initDir = path.join(init, 'checkpoint-latest', 'vae');
    const frozen = (out: string, steps: number, stopAfter?: number): VaeTrainOptions => ({ ...vaeOptions(out, steps, stopAfter), config: undefined, init: initDir, freezeEncoder: true });
    const straight = path.join(root, 'vae-frozen-straight');
    const resumed = path.join(root, 'vae-frozen-resumed');
    await trainVae(frozen(straight, 4));
    await trainVae(frozen(resumed, 4, 2)); // interrupted after step 2
    await trainVae(frozen(resumed, 4));
    assert.deepEqual(lossColumn(path.join(resumed, 'metrics.csv')), lossColumn(path.join(straight, 'metrics.csv')));
    const weights = (dir: string) => readSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'));
    const before = weights(initDir);
    const after = weights(path.join(straight, 'checkpoint-latest', 'vae'));
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'the checkpoint has every weight, the frozen ones too');
    let encoderKeys = 0;
    let decoderChanged = 0;
    for (const [key, t] of before) {
      const a = after.get(key)!.toFloat32();
      const initial = t.toFloat32();
      if (key.startsWith('encoder.')) {
        encoderKeys++;
        assert.deepEqual(a, initial, `frozen ${key}`);
      } else if (!a.every((v, i) => v === initial[i])) decoderChanged++;
    }
    assert.ok(encoderKeys > 10, `${encoderKeys} encoder weights`);
    assert.ok(decoderChanged > 10, `${decoderChanged} decoder weights changed`);
    // the optimizer state covers the decoder alone
    const state = readSafetensors(path.join(resumed, 'checkpoint-latest', 'training_state.safetensors'));
    assert.ok([...state.keys()].every((k) => !k.includes('encoder.')), 'no encoder state');
    const b = readSafetensors(path.join(straight, 'checkpoint-latest', 'training_state.safetensors'));
    for (const [k, t] of b) assert.deepEqual(state.get(k)!.data, t.data, `${k} after resuming`);
  });

  it('train: flow matching resumes exactly, and a checkpoint is a pipeline folder that generates', async () => {
    const base = path.join(root, 'base');
    await trainVae(vaeOptions(path.join(root, 'vae-for-base'), 2));
    fs.cpSync(path.join(root, 'vae-for-base', 'checkpoint-latest', 'vae'), path.join(base, 'vae'), { recursive: true });
    const tokenizer = writeShapesTokenizer(path.join(base, 'tokenizer'));
    writeSeededGemma2(path.join(base, 'text_encoder'), { seed: 1, vocabSize: tokenizer.vocabSize });
    fs.mkdirSync(path.join(base, 'scheduler'));
    fs.writeFileSync(path.join(base, 'scheduler', 'scheduler_config.json'), JSON.stringify(DEFAULT_SCHEDULER_CONFIG));
    fs.writeFileSync(path.join(base, 'model_index.json'), JSON.stringify(MODEL_INDEX));
    writeDiffusersComponent(path.join(base, 'transformer'), TINY_TRANSFORMER, initializeSanaTransformer(parseSanaTransformerConfig(TINY_TRANSFORMER, 't'), 0));
    const options = (out: string, steps: number, stopAfter?: number): TransformerTrainOptions => ({
      stopAfter,
      data,
      out,
      base,
      transformerConfig: TINY_TRANSFORMER,
      steps,
      batch: 3,
      lr: 1e-3,
      warmupSteps: 1,
      decay: 'constant',
      weightDecay: 0.01,
      maxGradNorm: 1,
      emaDecay: 0.9,
      captionDropout: 0.3,
      logitMean: 0,
      logitStd: 1,
      imageSize: 64,
      maxSequenceLength: 300,
      seed: 9,
      checkpointEvery: 2,
      validationPrompts: ['a red circle'],
      validationSteps: 2,
      threads: 1,
      resume: true,
    });
    const straight = path.join(root, 'dit-straight');
    const resumed = path.join(root, 'dit-resumed');
    await trainTransformer(options(straight, 4));
    await trainTransformer(options(resumed, 4, 2)); // interrupted after step 2
    await trainTransformer(options(resumed, 4));
    const losses = lossColumn(path.join(straight, 'metrics.csv'));
    assert.equal(losses.length, 4);
    assert.deepEqual(lossColumn(path.join(resumed, 'metrics.csv')), losses);
    const a = readSafetensors(path.join(straight, 'checkpoint-latest', 'transformer', 'diffusion_pytorch_model.safetensors'));
    const b = readSafetensors(path.join(resumed, 'checkpoint-latest', 'transformer', 'diffusion_pytorch_model.safetensors'));
    for (const [k, t] of a) assert.deepEqual(b.get(k)!.data, t.data, `EMA weight ${k} after resuming`);
    assert.ok(fs.existsSync(path.join(straight, 'validation-000004.png')));
    const { pipeline } = await loadSanaPipeline(path.join(straight, 'checkpoint-latest'), { threads: 1 });
    const r = await pipeline.run({ prompts: ['a blue square'], seed: 1, steps: 2, width: 64, height: 64, binning: false });
    assert.deepEqual(r.images.shape, [1, 3, 64, 64]);
    assert.ok(r.images.data.every((v) => v >= 0 && v <= 1));
  });

  it('data folders: bad lines and images are refused naming the line and file', () => {
    const bad = path.join(root, 'bad');
    fs.mkdirSync(path.join(bad, 'images'), { recursive: true });
    fs.copyFileSync(path.join(data, 'images', '00000.png'), path.join(bad, 'images', 'a.png'));
    fs.writeFileSync(path.join(bad, 'images', 'broken.png'), 'not a png');
    const write = (lines: string[]) => fs.writeFileSync(path.join(bad, 'captions.jsonl'), lines.join('\n'));
    write(['{"file": "images/a.png", "caption": "a red circle"}', '{"file": "images/a.png", "caption": ']);
    assert.throws(() => readCaptionFolder(bad), /captions\.jsonl line 2: not valid JSON/);
    write(['{"file": "images/missing.png", "caption": "x"}']);
    assert.throws(() => readCaptionFolder(bad), /line 1: image images\/missing\.png does not exist/);
    write(['{"file": "images/a.png"}']);
    assert.throws(() => readCaptionFolder(bad), /line 1: "caption" must be a string/);
    write(['{"file": "../data/images/00000.png", "caption": "x"}']);
    assert.throws(() => readCaptionFolder(bad), /outside the data folder/);
    write(['{"file": "images/a.png", "caption": "ok"}', '', '{"file": "images/broken.png", "caption": "x"}']);
    const records = readCaptionFolder(bad);
    assert.equal(records.length, 2);
    assert.equal(loadTrainingImage(bad, records[0], 32).length, 3 * 32 * 32);
    assert.throws(() => loadTrainingImage(bad, records[1], 32), /line 3: image images\/broken\.png cannot be read as a PNG/);
    assert.throws(() => readCaptionFolder(path.join(root, 'nope')), /not a folder/);
  });

  it('learning-rate schedules, clipping and the shifted logit-normal sigma follow their formulas', () => {
    const s = { peak: 1, warmupSteps: 10, decay: 'cosine' as const, totalSteps: 110, minRatio: 0.1 };
    assert.equal(learningRate(s, 5), 0.5);
    assert.equal(learningRate(s, 10), 1);
    assert.ok(Math.abs(learningRate(s, 60) - (0.1 + 0.9 * 0.5)) < 1e-12);
    assert.ok(Math.abs(learningRate(s, 110) - 0.1) < 1e-12);
    assert.equal(learningRate({ ...s, decay: 'constant' }, 100), 1);
    const g = [Float32Array.of(3, 4)];
    assert.deepEqual(clipGradNorm(g, 10), { totalNorm: 5, coefficient: 1 });
    const clipped = clipGradNorm(g, 1);
    assert.ok(Math.abs(clipped.coefficient - 1 / (5 + 1e-6)) < 1e-6);
    assert.ok(Math.abs(Math.hypot(g[0][0], g[0][1]) - 1) < 1e-5);
    assert.equal(shiftedSigma(0, 1), 0.5);
    assert.ok(Math.abs(shiftedSigma(0, 3) - 0.75) < 1e-12); // u = 0.5: 3 * 0.5 / (1 + 2 * 0.5)
  });
});
