// `sana doctor DIR`: the bundled model is sound; a damaged copy (a missing key, a wrong shape, a truncated file and a
// bad config value, one in each of four components) gets one report per component naming each problem, the
// untouched components stay sound, and the exit code is 2. The damage is made here with plain file operations.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { repoRoot } from './helpers/fixtures.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const DEFAULT_MODEL = path.join(repoRoot, 'models', 'default');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-doctor-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

interface Report {
  model: string;
  sound: boolean;
  parts: Array<{ part: string; sound: boolean; summary?: string; problems: string[] }>;
}

function doctor(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, 'doctor', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function part(report: Report, name: string) {
  const p = report.parts.find((x) => x.part === name);
  assert.ok(p, `the report has a ${name} part`);
  return p;
}

test('the bundled model is sound: every part, exit 0', () => {
  const r = doctor(DEFAULT_MODEL, '--json');
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(report.sound, true);
  assert.deepEqual(report.parts.map((p) => p.part), ['pipeline', 'transformer', 'vae', 'text_encoder', 'tokenizer', 'scheduler']);
  for (const p of report.parts) assert.deepEqual(p.problems, [], p.part);
  assert.match(part(report, 'transformer').summary!, /SanaTransformer2DModel: 6 blocks 192 wide/);
  const text = doctor(DEFAULT_MODEL);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /^ {2}vae +sound +AutoencoderDC/m);
  assert.match(text.stdout, /sound: every file, key, shape, dtype and config value checked\n$/);
});

test('a damaged copy: each problem reported under its component, the others sound, exit 2', () => {
  const model = path.join(root, 'damaged');
  fs.cpSync(DEFAULT_MODEL, model, { recursive: true });
  // transformer: a missing key
  const tFile = path.join(model, 'transformer', 'diffusion_pytorch_model.safetensors');
  const t = readSafetensors(tFile);
  assert.ok(t.delete('caption_projection.linear_1.bias'));
  writeSafetensors(tFile, t);
  // vae: a wrong shape (the same bytes, flattened)
  const vFile = path.join(model, 'vae', 'diffusion_pytorch_model.safetensors');
  const v = readSafetensors(vFile);
  const w = v.get('decoder.conv_in.weight')!;
  v.set('decoder.conv_in.weight', new HostTensor(w.dtype, [w.shape[0], w.data.length / w.shape[0]], w.data));
  writeSafetensors(vFile, v);
  // text encoder: a truncated weight file
  const eFile = path.join(model, 'text_encoder', 'model.safetensors');
  fs.truncateSync(eFile, fs.statSync(eFile).size - 10);
  // scheduler: a bad config value
  const sFile = path.join(model, 'scheduler', 'scheduler_config.json');
  fs.writeFileSync(sFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(sFile, 'utf8')), flow_shift: -3 }));

  const r = doctor(model, '--json');
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), `sana doctor: ${model}: transformer, vae, text_encoder, scheduler have problems`);
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(report.sound, false);
  const problems = (name: string) => part(report, name).problems.join('\n');
  assert.match(problems('transformer'), /missing \(1\):\n\s+caption_projection\.linear_1\.bias \[192\]/);
  assert.match(problems('vae'), /mis-shaped \(1\):\n\s+decoder\.conv_in\.weight: file has \[128,144\], model expects \[128,16,3,3\]/);
  assert.ok(problems('text_encoder').startsWith(`${eFile}: `), problems('text_encoder'));
  assert.match(problems('text_encoder'), /leave the data area of \d+ bytes \(truncated file\?\)/);
  assert.equal(problems('scheduler'), `${sFile}: config key "flow_shift" must be a positive number (got -3)`);
  assert.equal(part(report, 'tokenizer').sound, true);
  assert.equal(part(report, 'pipeline').sound, true, 'the layout itself is fine');

  const text = doctor(model);
  assert.equal(text.code, 2);
  assert.match(text.stdout, /^ {2}transformer +PROBLEM\n {6}SanaTransformer2DModel \(/m);
  assert.match(text.stdout, /4 of 6 parts have problems\n$/);
});

test('a broken model_index.json is reported, and the component folders are still checked', () => {
  const model = path.join(root, 'no-index');
  fs.cpSync(DEFAULT_MODEL, model, { recursive: true });
  const index = path.join(model, 'model_index.json');
  fs.writeFileSync(index, JSON.stringify({ ...JSON.parse(fs.readFileSync(index, 'utf8')), vae: ['diffusers', 'AutoencoderKL'] }));
  const r = doctor(model, '--json');
  assert.equal(r.code, 2);
  const report = JSON.parse(r.stdout) as Report;
  assert.deepEqual(part(report, 'pipeline').problems, [`${index}: "vae" is AutoencoderKL; expected AutoencoderDC`]);
  assert.ok(report.parts.filter((p) => p.part !== 'pipeline').every((p) => p.sound));
});

test('a single component folder is checked on its own; a folder of nothing known is a usage error', () => {
  const r = doctor(path.join(DEFAULT_MODEL, 'text_encoder'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /text_encoder +sound +Gemma-2: 2 layers 128 wide/);
  const empty = fs.mkdtempSync(path.join(root, 'empty-'));
  const bad = doctor(empty);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /neither a pipeline folder \(model_index\.json\) nor a component folder/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /);
});
