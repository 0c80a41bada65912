// The transformer trainer's cache of latents and caption states: a second run reads both back unchanged; a new
// text encoder or reworded captions re-encode the text alone (the latents file is not rewritten), a new autoencoder
// re-encodes the images alone; the single-file cache of earlier versions is removed.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readDcaeConfig } from '../src/models/dcae/config.js';
import { readCaptionFolder } from '../src/train/caption-folder.js';
import { CAPTION_CACHE_FILE, CacheSources, LATENT_CACHE_FILE, loadOrBuildEmbeddingCache } from '../src/train/embedding-cache.js';
import { initializeDcae, writeDiffusersComponent } from '../src/train/initialize.js';
import { TrainProgress } from '../src/train/progress.js';
import { writeShapesDataset } from '../src/train/shapes/dataset.js';
import { writeSeededGemma2, writeShapesTokenizer } from '../src/train/text-encoder/tiny-gemma.js';

const TINY_VAE = {
  _class_name: 'AutoencoderDC',
  in_channels: 3,
  latent_channels: 4,
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

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-embedding-cache-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const data = path.join(root, 'data');
const vaeDir = path.join(root, 'vae');
const textEncoderDir = path.join(root, 'text_encoder');
const tokenizerDir = path.join(root, 'tokenizer');
const cacheDir = path.join(root, 'cache');

function writeVae(seed: number): void {
  fs.mkdirSync(vaeDir, { recursive: true });
  fs.writeFileSync(path.join(vaeDir, 'config.json'), JSON.stringify(TINY_VAE));
  writeDiffusersComponent(vaeDir, TINY_VAE, initializeDcae(readDcaeConfig(path.join(vaeDir, 'config.json')), seed));
}

let vocabSize = 0;
before(() => {
  writeShapesDataset(data, { count: 3, seed: 11, size: 64, split: 'train' });
  writeVae(1);
  vocabSize = writeShapesTokenizer(tokenizerDir).vocabSize;
  writeSeededGemma2(textEncoderDir, { seed: 2, vocabSize, composable: true });
});

function sources(records = readCaptionFolder(data)): CacheSources {
  return { data, records, vaeDir, textEncoderDir, tokenizerDir, imageSize: 64, maxSequenceLength: 300, threads: 1 };
}

/** Runs the cache and returns it with the progress stages it reported. */
async function run(s: CacheSources) {
  const stages: string[] = [];
  const progress: TrainProgress = { stage: (t) => stages.push(t), step: () => {} };
  const cache = await loadOrBuildEmbeddingCache(cacheDir, s, progress);
  return { cache, stages: stages.join(' | ') };
}

const mtime = (file: string) => fs.statSync(path.join(cacheDir, file)).mtimeMs;

describe('embedding cache', () => {
  it('keys latents and caption states apart, so each is re-encoded only when its own sources change', async () => {
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(path.join(cacheDir, 'embeddings.safetensors'), 'the single-file cache of an earlier version');
    const first = await run(sources());
    assert.match(first.stages, /encoding 3 images with the autoencoder/);
    assert.match(first.stages, /encoding 3 captions with the text encoder/);
    assert.equal(fs.existsSync(path.join(cacheDir, 'embeddings.safetensors')), false, 'the old single-file cache is removed');
    assert.deepEqual(first.cache.latents.shape, [3, 4, 2, 2]);
    assert.equal(first.cache.captions.shape[0], 3);
    assert.equal(first.cache.captions.shape[2], 128);

    const again = await run(sources());
    assert.match(again.stages, /using cached latents/);
    assert.match(again.stages, /using cached caption embeddings/);
    assert.doesNotMatch(again.stages, /encoding/);
    assert.deepEqual(again.cache.latents.data, first.cache.latents.data);
    assert.deepEqual(again.cache.captions.data, first.cache.captions.data);
    assert.deepEqual(again.cache.masks.data, first.cache.masks.data);
    assert.deepEqual(again.cache.nullCaption.data, first.cache.nullCaption.data);

    // another text encoder: the captions are re-encoded, the latents file is not touched
    const latentsWritten = mtime(LATENT_CACHE_FILE);
    writeSeededGemma2(textEncoderDir, { seed: 3, vocabSize, composable: true });
    const newEncoder = await run(sources());
    assert.match(newEncoder.stages, /using cached latents/);
    assert.match(newEncoder.stages, /encoding 3 captions with the text encoder/);
    assert.equal(mtime(LATENT_CACHE_FILE), latentsWritten);
    assert.deepEqual(newEncoder.cache.latents.data, first.cache.latents.data);
    assert.notDeepEqual(newEncoder.cache.captions.data, first.cache.captions.data);

    // one caption reworded: the text again, not the images
    const records = readCaptionFolder(data);
    const reworded = records.map((r, i) => (i === 1 ? { ...r, caption: `${r.caption} on a gray background` } : r));
    const newCaption = await run(sources(reworded));
    assert.match(newCaption.stages, /using cached latents/);
    assert.match(newCaption.stages, /encoding 3 captions/);

    // another autoencoder: the images are re-encoded, the caption states are read back
    const captionsWritten = mtime(CAPTION_CACHE_FILE);
    writeVae(9);
    const newVae = await run(sources(reworded));
    assert.match(newVae.stages, /encoding 3 images with the autoencoder/);
    assert.match(newVae.stages, /using cached caption embeddings/);
    assert.equal(mtime(CAPTION_CACHE_FILE), captionsWritten);
    assert.notDeepEqual(newVae.cache.latents.data, first.cache.latents.data);
    assert.deepEqual(newVae.cache.captions.data, newCaption.cache.captions.data);
  });
});
