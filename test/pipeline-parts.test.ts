import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { decodePng, encodePng, writePng } from '../src/io/png.js';
import { resolvePipelineFolder, hubCacheDir } from '../src/pipeline/model-folder.js';
import { denormalize, toRgbImages } from '../src/pipeline/postprocess.js';
import { binResolution, bilinear, resizeAndCrop } from '../src/pipeline/resolution.js';
import { fixturePath } from './helpers/fixtures.js';

test('resolution binning picks the nearest ratio of the table chosen by sample_size (SANA.md §7.1)', () => {
  assert.deepEqual(binResolution(32, 1024, 1024), { height: 1024, width: 1024 });
  assert.deepEqual(binResolution(32, 768, 1360), { height: 768, width: 1344 }); // ratio 0.5647 -> key 0.57
  assert.deepEqual(binResolution(16, 512, 512), { height: 512, width: 512 });
  assert.deepEqual(binResolution(16, 300, 1200), { height: 256, width: 1024 }); // 0.25
  assert.deepEqual(binResolution(64, 1000, 3000), { height: 1152, width: 3456 }); // 0.333 -> 0.33
  assert.deepEqual(binResolution(128, 4096, 4096), { height: 4096, width: 4096 });
  assert.deepEqual(binResolution(64, 2900, 1000), { height: 3328, width: 1152 }); // 2.9 -> 2.89 (40-entry table)
  assert.throws(() => binResolution(24, 512, 512), /sample_size 24/);
  // sample_size 8 (the bundled 256 px model): the 1024 table at a quarter, rounded to multiples of 32
  assert.deepEqual(binResolution(8, 256, 256), { height: 256, width: 256 });
  assert.deepEqual(binResolution(8, 128, 512), { height: 128, width: 512 }); // 0.25: 512 x 2048 / 4
  assert.deepEqual(binResolution(8, 200, 300), { height: 224, width: 320 }); // 0.667 -> 0.68: 832 x 1216 / 4 = 208 x 304, rounded
});

test('bilinear resize matches torch align_corners=False on a hand-computed case', () => {
  // 1x2 -> 1x4: source x = (i + 0.5) / 2 - 0.5 = -0.25 (clamped 0), 0.25, 0.75, 1.25 (-> index 1)
  const out = bilinear(Float32Array.of(0, 4), 1, 1, 2, 1, 4);
  assert.deepEqual([...out], [0, 1, 3, 4]);
});

test('resize-and-crop scales to cover then center-crops', () => {
  // 2x2 -> 2x1: ratio max(1, 0.5) = 1, no resize; crop column offset (2-1)//2 = 0
  const img = HostTensor.float32([1, 1, 2, 2], [1, 2, 3, 4]);
  assert.deepEqual([...resizeAndCrop(img, 2, 1).data], [1, 3]);
  const same = resizeAndCrop(img, 2, 2);
  assert.equal(same, img);
});

test('postprocess maps [-1, 1] to 8-bit with clamping and half-to-even rounding', () => {
  // planes R = [-1, 1], G = [3, -0.2], B = [-5, 0]: -1 -> 0; 1 -> 255; 3 -> clamp 255; -0.2 -> 0.4*255 = 102;
  // -5 -> clamp 0; 0 -> 127.5, the only exact tie, rounds to even 128
  const x = HostTensor.float32([1, 3, 1, 2], [-1, 1, 3, -0.2, -5, 0]);
  const [img] = toRgbImages(denormalize(x));
  assert.equal(img.width, 2);
  assert.equal(img.height, 1);
  assert.deepEqual([...img.rgb], [0, 255, 0, 255, 102, 128]);
});

test('PNG round trip keeps pixels and UTF-8 text chunks; written atomically', () => {
  const rgb = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256);
  const bytes = encodePng({ width: 4, height: 3, rgb }, { prompt: 'a cat — 猫', seed: '42' });
  const back = decodePng(bytes);
  assert.equal(back.width, 4);
  assert.equal(back.height, 3);
  assert.deepEqual([...back.rgb], [...rgb]);
  assert.deepEqual(back.text, { prompt: 'a cat — 猫', seed: '42' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'png-'));
  writePng(path.join(dir, 'x.png'), { width: 4, height: 3, rgb });
  assert.deepEqual(fs.readdirSync(dir), ['x.png']);
  assert.throws(() => encodePng({ width: 4, height: 3, rgb: rgb.subarray(1) }), /needs 36 bytes/);
});

test('pipeline folders: the fixture resolves; a missing file or component is named', () => {
  const model = fixturePath('sana_pipeline_tiny_e2e', 'model');
  const folder = resolvePipelineFolder(model);
  assert.equal(folder.components.transformer, path.join(model, 'transformer'));
  // a pipeline saved without its text side is valid (driven by embeddings)
  assert.equal(resolvePipelineFolder(fixturePath('sana_pipeline_tiny', 'model')).components.text_encoder, undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipe-'));
  assert.throws(() => resolvePipelineFolder(dir), /missing model_index.json/);
  fs.cpSync(model, path.join(dir, 'm'), { recursive: true });
  fs.chmodSync(path.join(dir, 'm', 'vae'), 0o755);
  fs.rmSync(path.join(dir, 'm', 'vae', 'config.json'), { force: true });
  assert.throws(() => resolvePipelineFolder(path.join(dir, 'm')), /missing vae\/config.json/);
  assert.throws(() => resolvePipelineFolder('no/such-model', { HF_HUB_CACHE: dir }), /not in the local Hugging Face cache/);
});

test('Hugging Face cache: HF_HUB_CACHE, then HF_HOME/hub; refs/main picks the snapshot', () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/a', HF_HOME: '/b' }), '/a');
  assert.equal(hubCacheDir({ HF_HOME: '/b' }), path.join('/b', 'hub'));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-'));
  const repo = path.join(cache, 'models--Org--Tiny');
  fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'refs', 'main'), 'abc123\n');
  fs.cpSync(fixturePath('sana_pipeline_tiny_e2e', 'model'), path.join(repo, 'snapshots', 'abc123'), { recursive: true });
  const folder = resolvePipelineFolder('Org/Tiny', { HF_HUB_CACHE: cache });
  assert.equal(folder.root, path.join(repo, 'snapshots', 'abc123'));
});
