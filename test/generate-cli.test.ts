// `sana generate` end to end on the e2e fixture model, and every bad input of the CLI (exit code 2, a message that
// names the problem, no partial output file).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { decodePng } from '../src/io/png.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { fixturePath, fixtureTensor, repoRoot } from './helpers/fixtures.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const model = fixturePath('sana_pipeline_tiny_e2e', 'model');
const prompt = 'A cat holding a sign that says Hello World';

function sana(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sana-gen-'));
}

/** A writable copy of the e2e model whose files can be edited. */
function modelCopy(): string {
  const dir = path.join(tmp(), 'model');
  fs.cpSync(model, dir, { recursive: true });
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) fs.chmodSync(path.join(dir, f), 0o755);
  fs.chmodSync(dir, 0o755);
  return dir;
}

function editJson(file: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j));
}

test('sana generate on the e2e model writes a PNG that decodes to the reference image, with metadata', () => {
  const dir = tmp();
  const latentsFile = path.join(dir, 'latents.safetensors');
  writeSafetensors(latentsFile, { latents: fixtureTensor('sana_pipeline_tiny_e2e', 'inputs', 'latents') });
  const out = path.join(dir, 'cat.png');
  const r = sana('generate', prompt, '--model', model, '--latents', latentsFile, '-o', out, '--width', '192', '--height', '256', '--no-binning', '--json');
  assert.equal(r.code, 0, r.stderr);
  const record = JSON.parse(r.stdout);
  assert.deepEqual(record.files, [out]);
  assert.equal(record.steps, 20);
  assert.equal(record.sampler, 'dpm');
  assert.equal(record.timings.stepSeconds.length, 20);
  assert.match(r.stderr, /step 20\/20/);
  assert.match(r.stderr, /text encoding .* decode .* total/);
  assert.match(r.stderr, /peak memory/);

  const png = decodePng(fs.readFileSync(out));
  assert.equal(png.width, 192);
  assert.equal(png.height, 256);
  const ref = fixtureTensor('sana_pipeline_tiny_e2e', 'outputs', 'image').data as Float32Array;
  const plane = 256 * 192;
  let worst = 0;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(png.rgb[p * 3 + c] - ref[c * plane + p] * 255));
  }
  assert.ok(worst <= 0.5 + 0.0001 * 255, `8-bit image differs from the reference by ${worst} levels`);
  assert.equal(png.text.prompt, prompt);
  assert.equal(png.text.steps, '20');
  assert.equal(png.text.guidance, '4.5');
  assert.equal(png.text.sampler, 'dpm');
  assert.equal(png.text.model, model);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['cat.png', 'latents.safetensors']);
});

test('the same seed gives the same image; several prompts and images get numbered files', () => {
  const dir = tmp();
  const a = sana('generate', prompt, 'a dog', '--model', model, '--seed', '7', '--steps', '2', '--num-images', '2', '--no-binning', '--width', '64', '--height', '96', '-o', path.join(dir, 'a.png'), '--quiet');
  assert.equal(a.code, 0, a.stderr);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['a-0.png', 'a-1.png', 'a-2.png', 'a-3.png']);
  const b = sana('generate', prompt, 'a dog', '--model', model, '--seed', '7', '--steps', '2', '--num-images', '2', '--no-binning', '--width', '64', '--height', '96', '-o', path.join(dir, 'b.png'), '--quiet');
  assert.equal(b.code, 0, b.stderr);
  for (const i of [0, 1, 2, 3]) {
    assert.deepEqual(decodePng(fs.readFileSync(path.join(dir, `a-${i}.png`))).rgb, decodePng(fs.readFileSync(path.join(dir, `b-${i}.png`))).rgb);
  }
  const meta = decodePng(fs.readFileSync(path.join(dir, 'a-2.png'))).text;
  assert.equal(meta.prompt, 'a dog');
  assert.equal(meta.seed, '7');
  assert.equal(decodePng(fs.readFileSync(path.join(dir, 'a-2.png'))).width, 64);
});

function expectBad(args: string[], pattern: RegExp, dir?: string): void {
  const r = sana('generate', ...args);
  assert.equal(r.code, 2, `expected exit 2 for ${args.join(' ')}; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  if (dir) assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.png')), [], 'no output file');
}

test('bad arguments: each gets a clear message, exit code 2 and no output file', () => {
  const dir = tmp();
  const o = ['-o', path.join(dir, 'x.png')];
  expectBad(['--model', model, ...o], /give a prompt/, dir);
  expectBad([prompt, '--model', model, '--width', '16', '--height', '256', ...o], /width must be an integer from 32 to 8192, got 16/, dir);
  expectBad([prompt, '--model', model, '--width', '9000', '--height', '256', ...o], /width must be an integer from 32 to 8192/, dir);
  expectBad([prompt, '--model', model, '--width', '200', '--height', '256', '--no-binning', ...o], /width must be a multiple of 32 when resolution binning is off, got 200/, dir);
  expectBad([prompt, '--model', model, '--steps', '0', '--no-binning', '--width', '64', '--height', '64', ...o], /steps must be a positive integer, got 0/, dir);
  expectBad([prompt, '--model', model, '--guidance=-1', '--no-binning', '--width', '64', '--height', '64', ...o], /guidance must be a number >= 0, got -1/, dir);
  expectBad([prompt, '--model', model, '--sampler', 'ddim', ...o], /--sampler: expected dpm or euler/, dir);
  expectBad([prompt, '--model', model, '--seed', 'abc', ...o], /--seed: expected an integer/, dir);
  expectBad([prompt, '--model', model, '--text-quantization', 'int2', ...o], /--text-quantization: expected none, int8 or int4/, dir);
  expectBad([prompt, '--model', model, '--transformer-quantization', 'int4', ...o], /--transformer-quantization: expected none or int8, got "int4"/, dir);
  expectBad([prompt, '--model', model, '--vae-tile-size', '500', ...o], /--vae-tile-size: expected a multiple of 32 pixels, at least 64, got 500/, dir);
  expectBad([prompt, '--model', model, '--vae-tile-size', '256', '--vae-tile-stride', '320', ...o], /--vae-tile-stride: expected a multiple of 32 pixels no larger than the tile \(256\), got 320/, dir);
  expectBad([prompt, '--model', model, '--vae-tile-stride', '448', ...o], /--vae-tile-stride needs --vae-tile-size/, dir);
  expectBad([prompt, '--model', path.join(dir, 'nope'), ...o], /no such folder/, dir);
  expectBad([prompt, '--model', dir, ...o], /missing model_index.json/, dir);
  expectBad([prompt, '--model', model, '-o', '/nonexistent-dir/x.png'], /--output: cannot write into \/nonexistent-dir/);
});

test('the resolution bin table follows sample_size; a model without a table asks for --no-binning', () => {
  const dir = tmp();
  const copy = modelCopy();
  editJson(path.join(copy, 'transformer', 'config.json'), (j) => {
    j.sample_size = 4;
  });
  expectBad([prompt, '--model', copy, '-o', path.join(dir, 'x.png')], /no table for transformer sample_size 4.*--no-binning/, dir);
});

test('latents: wrong shape, NaN values, missing tensor are named', () => {
  const dir = tmp();
  const o = ['-o', path.join(dir, 'x.png'), '--no-binning', '--width', '192', '--height', '256'];
  const wrong = path.join(dir, 'wrong.safetensors');
  writeSafetensors(wrong, { latents: HostTensor.float32([1, 8, 4, 4]) });
  expectBad([prompt, '--model', model, '--latents', wrong, ...o], /latents have shape \[1, 8, 4, 4\]; this request needs \[1, 8, 8, 6\]/, dir);
  const nan = path.join(dir, 'nan.safetensors');
  writeSafetensors(nan, { latents: HostTensor.float32([1, 8, 8, 6], new Float32Array(384).fill(NaN)) });
  expectBad([prompt, '--model', model, '--latents', nan, ...o], /given latents contain NaN/, dir);
  const other = path.join(dir, 'other.safetensors');
  writeSafetensors(other, { noise: HostTensor.float32([1]) });
  expectBad([prompt, '--model', model, '--latents', other, ...o], /has no tensor named "latents"/, dir);
});

test('a model whose transformer produces NaN stops with an error naming the step, and writes nothing', () => {
  const m = modelCopy();
  const weights = path.join(m, 'transformer', 'diffusion_pytorch_model.safetensors');
  const tensors = readSafetensors(weights);
  tensors.set('proj_out.bias', HostTensor.float32([8], new Float32Array(8).fill(NaN)));
  writeSafetensors(weights, tensors);
  const dir = tmp();
  expectBad([prompt, '--model', m, '--seed', '1', '--no-binning', '--width', '64', '--height', '64', '-o', path.join(dir, 'x.png')], /transformer output at step 1 contain NaN/, dir);
});

test('mismatched components are named: caption channels vs text encoder width, latent channels vs VAE', () => {
  const dir = tmp();
  const o = ['-o', path.join(dir, 'x.png'), '--no-binning', '--width', '64', '--height', '64'];
  const m1 = modelCopy();
  editJson(path.join(m1, 'text_encoder', 'config.json'), (j) => (j.hidden_size = 48));
  expectBad([prompt, '--model', m1, ...o], /text encoder's width is 48 but the transformer's caption_channels is 32/, dir);
  const m2 = modelCopy();
  editJson(path.join(m2, 'vae', 'config.json'), (j) => (j.latent_channels = 4));
  expectBad([prompt, '--model', m2, ...o], /transformer works on 8 latent channels but the VAE has 4/, dir);
});

test('a prompt longer than the caption window is truncated with a warning', () => {
  const dir = tmp();
  const long = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
  const r = sana('generate', long, '--model', model, '--seed', '3', '--steps', '1', '--no-binning', '--width', '64', '--height', '64', '-o', path.join(dir, 'x.png'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: prompt 0: \d+ token\(s\) beyond the 299 .* dropped/);
  assert.ok(fs.existsSync(path.join(dir, 'x.png')));
});

test('--vae-tile-size decodes in tiles and shows tile progress', () => {
  const dir = tmp();
  const latentsFile = path.join(dir, 'latents.safetensors');
  writeSafetensors(latentsFile, { latents: fixtureTensor('sana_pipeline_tiny_e2e', 'inputs', 'latents') });
  const out = path.join(dir, 'tiled.png');
  const args = ['generate', prompt, '--model', model, '--latents', latentsFile, '--width', '192', '--height', '256', '--no-binning', '--steps', '2'];
  const r = sana(...args, '-o', out, '--vae-tile-size', '128', '--vae-tile-stride', '96');
  assert.equal(r.code, 0, r.stderr);
  // A 6 x 8 latent in 4-pixel tiles every 3: rows start at 0, 3, 6 and columns at 0, 3, so 6 tiles.
  for (let t = 1; t <= 6; t++) assert.match(r.stderr, new RegExp(`tile ${t}/6 `));
  const plain = path.join(dir, 'plain.png');
  assert.equal(sana(...args, '-o', plain).code, 0);
  const a = decodePng(fs.readFileSync(out)).rgb;
  const b = decodePng(fs.readFileSync(plain)).rgb;
  assert.equal(a.length, b.length);
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
  assert.ok(differ > 0, 'the tiled decode ran (the random-weight tiny VAE has strong tile-edge effects)');
});

test('an output that is not a regular file (a device) is refused before generating, and left alone', () => {
  const t0 = Date.now();
  const r = sana('generate', prompt, '--model', model, '-o', '/dev/full', '--quiet');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--output: cannot write \/dev\/full: it is a character device, not a regular file; refusing to replace it/);
  assert.doesNotMatch(r.stderr, /denois|\n\s+at /);
  assert.ok(fs.statSync('/dev/full').isCharacterDevice());
  assert.ok(Date.now() - t0 < 20_000);
});
