// `sana run <component>` on every component's fixture: named tensors in, named tensors out, compared with the
// reference outputs at the manifest tolerance; and clear errors for inputs that do not fit.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { loadDcae } from '../src/models/dcae/model.js';
import { crop } from '../src/models/dcae/tiling.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest, repoRoot } from './helpers/fixtures.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

function sanaRun(component: string, dir: string, inputs: string, output: string, ...extra: string[]) {
  const r = spawnSync(process.execPath, [cli, 'run', component, '--component', dir, '--inputs', inputs, '--output', output, '--threads', '2', ...extra], {
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

test('sana run vae-decode --tile N --tile-stride S decodes in tiles of that geometry', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-run-'));
  // The fixture's [1, 8, 4, 3] latent decodes to 128 x 96 px: 64 px tiles every 32 px make 3 x 2 tiles.
  const latent = fixtureTensor('dcae_tiny', 'outputs', 'latent');
  const inputs = path.join(dir, 'in.safetensors');
  writeSafetensors(inputs, { latent });
  const component = fixturePath('dcae_tiny', 'component');
  const out = path.join(dir, 'out.safetensors');
  const r = sanaRun('vae-decode', component, inputs, out, '--tile', '64', '--tile-stride', '32');
  assert.equal(r.code, 0, r.stderr);
  const got = readSafetensors(out).get('sample')!;
  const tiling = { tileHeight: 64, tileWidth: 64, strideHeight: 32, strideWidth: 32 };
  const tiled = await loadDcae(component, { threads: 2, tiling });
  const plain = await loadDcae(component, { threads: 2 });
  try {
    assert.deepEqual(Array.from(got.toFloat32()), Array.from((await tiled.decode(latent)).toFloat32()), 'the CLI decodes with the given tiles');
    // The first tile's kept 32 x 32 corner is that tile decoded alone; the whole image is not the untiled decode.
    const corner = await plain.decode(crop(latent, 0, 2, 0, 2));
    assertClose(crop(got, 0, 32, 0, 32), crop(corner, 0, 32, 0, 32), { atol: 1e-5, rtol: 1e-5 }, 'first tile');
    const untiled = (await plain.decode(latent)).toFloat32();
    assert.ok(got.toFloat32().some((v, i) => Math.abs(v - untiled[i]) > 1e-3), 'tiling changes the result on this random model');
  } finally {
    await tiled.release();
    await plain.release();
  }
  // The default stride is 7/8 of the tile; bad geometry and --tile on other components are usage errors.
  const bad = (args: string[], message: RegExp, componentName = 'vae-decode') => {
    const e = sanaRun(componentName, component, inputs, path.join(dir, 'bad.safetensors'), ...args);
    assert.equal(e.code, 2, e.stderr);
    assert.match(e.stderr, message);
  };
  bad(['--tile', '48'], /--tile: expected a multiple of 32 pixels, at least 64, got 48/);
  bad(['--tile', '64', '--tile-stride', '96'], /--tile-stride: expected a multiple of 32 pixels no larger than the tile \(64\), got 96/);
  bad(['--tile-stride', '32'], /--tile-stride needs --tile/);
  bad(['--tile', '64'], /--tile applies to vae-encode and vae-decode, not transformer/, 'transformer');
  assert.ok(!fs.existsSync(path.join(dir, 'bad.safetensors')));
});
