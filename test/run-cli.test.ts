// `sana run <component>` on every component's fixture: named tensors in, named tensors out, compared with the
// reference outputs at the manifest tolerance; and clear errors for inputs that do not fit.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest, repoRoot } from './helpers/fixtures.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

function sanaRun(component: string, dir: string, inputs: string, output: string) {
  const r = spawnSync(process.execPath, [cli, 'run', component, '--component', dir, '--inputs', inputs, '--output', output, '--threads', '2'], {
    encoding: 'utf8',
  });
  return { code: r.status, stderr: r.stderr };
}

const cases: Array<{ component: string; fixture: string; outputs: Record<string, string> }> = [
  { component: 'transformer', fixture: 'sana_transformer_tiny', outputs: { sample: 'sample' } },
  { component: 'transformer', fixture: 'sana_transformer_tiny_v2', outputs: { sample: 'sample' } },
  { component: 'vae-encode', fixture: 'dcae_tiny', outputs: { latent: 'latent' } },
  { component: 'vae-decode', fixture: 'dcae_tiny', outputs: { sample: 'sample' } },
  { component: 'text-encoder', fixture: 'gemma2_tiny', outputs: { last_hidden_state: 'last_hidden_state' } },
  { component: 'text-encoder', fixture: 'gemma2_tiny_window', outputs: { last_hidden_state: 'last_hidden_state' } },
];

for (const c of cases) {
  test(`sana run ${c.component} reproduces ${c.fixture}`, () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sana-run-')), 'out.safetensors');
    const r = sanaRun(c.component, fixturePath(c.fixture, 'component'), fixturePath(c.fixture, 'inputs.safetensors'), out);
    assert.equal(r.code, 0, r.stderr);
    const got = readSafetensors(out);
    const tol = loadManifest(c.fixture).tolerance as Record<string, { atol: number; rtol?: number; rel_l2?: number }>;
    for (const [ours, theirs] of Object.entries(c.outputs)) {
      const t = got.get(ours);
      assert.ok(t, `output ${ours} written`);
      assertClose(t, fixtureTensor(c.fixture, 'outputs', theirs), tol[theirs], `${c.fixture} ${ours}`);
    }
  });
}

test('sana run names a missing input tensor and a mistyped one, and writes nothing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-run-'));
  const inputs = readSafetensors(fixturePath('sana_transformer_tiny', 'inputs.safetensors'));
  const partial = path.join(dir, 'partial.safetensors');
  writeSafetensors(partial, { hidden_states: inputs.get('hidden_states')! });
  const out = path.join(dir, 'out.safetensors');
  const r = sanaRun('transformer', fixturePath('sana_transformer_tiny', 'component'), partial, out);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /lacks "encoder_hidden_states", "encoder_attention_mask", "timestep"/);
  const mask = inputs.get('encoder_attention_mask')!;
  const badMask = path.join(dir, 'bad-mask.safetensors');
  writeSafetensors(badMask, { ...Object.fromEntries(inputs), encoder_attention_mask: HostTensor.float32(mask.shape, Float32Array.from(mask.toFloat32())) });
  const bad = sanaRun('transformer', fixturePath('sana_transformer_tiny', 'component'), badMask, out);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /encoder_attention_mask must be int64/);
  assert.ok(!fs.existsSync(out), 'no output file');
});
