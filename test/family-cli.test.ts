// The SANA family through `sana generate`: Sprint, Sprint img2img, PAG and ControlNet runs of the fixtures give
// the reference images (to 8-bit rounding: the CLI writes PNG), and every argument of each fixture's call maps to
// a documented flag.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodePng } from '../src/io/png.js';
import { GENERATE_HELP } from '../src/cli/generate.js';
import { fixturePath, fixtureTensor, loadManifest, repoRoot } from './helpers/fixtures.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** Each call argument of the fixtures and the flag that carries it (null: not a choice a CLI user makes). */
const FLAG_OF: Record<string, string | null> = {
  prompt: null, // the positional PROMPT
  negative_prompt: '--negative',
  num_inference_steps: '--steps',
  max_timesteps: '--max-timesteps',
  intermediate_timesteps: '--intermediate-timesteps',
  guidance_scale: '--guidance',
  height: '--height',
  width: '--width',
  use_resolution_binning: '--no-binning',
  max_sequence_length: '--max-sequence-length',
  seed: '--seed',
  strength: '--strength',
  pag_scale: '--pag-scale',
  pag_adaptive_scale: '--pag-adaptive-scale',
  pag_applied_layers: '--pag-layers',
  controlnet_conditioning_scale: '--control-scale',
  output_type: null, // the CLI writes PNG files
  return_dict: null,
};

function generate(fixture: string, extra: string[]): { width: number; height: number; rgb: Uint8Array } {
  const call = loadManifest(fixture).call as Record<string, any>;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sana-family-')), 'out.png');
  const args = [cli, 'generate', call.prompt, '--model', fixturePath(fixture, 'model'), '-o', out, '--quiet', '--no-binning'];
  args.push('--steps', String(call.num_inference_steps), '--guidance', String(call.guidance_scale));
  args.push('--width', String(call.width), '--height', String(call.height), '--max-sequence-length', String(call.max_sequence_length));
  if (call.negative_prompt !== undefined) args.push('--negative', call.negative_prompt);
  const r = spawnSync(process.execPath, [...args, ...extra], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return decodePng(fs.readFileSync(out));
}

/** The PNG against the reference image [1, 3, H, W] in [0, 1]: within half an 8-bit level plus the tolerance. */
function assertImage(png: { width: number; height: number; rgb: Uint8Array }, fixture: string): void {
  const ref = fixtureTensor(fixture, 'outputs', 'image');
  const [, , h, w] = ref.shape;
  assert.deepEqual([png.height, png.width], [h, w]);
  const plane = h * w;
  let worst = 0;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(png.rgb[p * 3 + c] / 255 - (ref.data as Float32Array)[c * plane + p]));
  }
  assert.ok(worst <= 0.5 / 255 + 1e-4, `${fixture}: worst pixel differs by ${worst * 255} levels`);
}

test('every call argument of the family fixtures maps to a documented sana generate flag', () => {
  for (const fixture of ['sana_sprint_pipeline_tiny', 'sana_sprint_img2img_tiny', 'sana_pag_pipeline_tiny', 'sana_controlnet_pipeline_tiny']) {
    for (const key of Object.keys(loadManifest(fixture).call as object)) {
      assert.ok(key in FLAG_OF, `${fixture}: call argument ${key} has no flag`);
      const flag = FLAG_OF[key];
      if (flag) assert.match(GENERATE_HELP, new RegExp(`^ .*\\s${flag}\\b`, 'm'), `${flag} is documented in sana generate --help`);
    }
  }
});

test('sana generate: Sprint (2 steps, given latents, seed 42) and Sprint img2img (--image --strength 0.6, seed 52)', () => {
  const sprint = 'sana_sprint_pipeline_tiny';
  assertImage(
    generate(sprint, ['--latents', fixturePath(sprint, 'inputs.safetensors'), '--seed', '42', '--max-timesteps', '1.5708', '--intermediate-timesteps', '1.3']),
    sprint,
  );
  const img2img = 'sana_sprint_img2img_tiny';
  assertImage(generate(img2img, ['--image', fixturePath(img2img, 'input.png'), '--strength', '0.6', '--seed', '52', '--intermediate-timesteps', 'none']), img2img);
});

test('sana generate: PAG (--pag-scale 2 --pag-layers transformer_blocks.1) and ControlNet (--control-image, scale 0.7)', () => {
  const pag = 'sana_pag_pipeline_tiny';
  assertImage(generate(pag, ['--latents', fixturePath(pag, 'inputs.safetensors'), '--pag-scale', '2', '--pag-layers', 'transformer_blocks.1']), pag);
  const cn = 'sana_controlnet_pipeline_tiny';
  assertImage(generate(cn, ['--latents', fixturePath(cn, 'inputs.safetensors'), '--control-image', fixturePath(cn, 'control.png'), '--control-scale', '0.7']), cn);
});

test('family flags refuse what does not apply, naming it', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['sana_sprint_pipeline_tiny', ['--sampler', 'euler'], /SCMScheduler \(SANA-Sprint\); a sampler \(euler\) cannot be chosen/],
    ['sana_sprint_pipeline_tiny', ['--steps', '3', '--intermediate-timesteps', '1.3'], /intermediate timesteps apply to 2 steps only/],
    ['sana_pag_pipeline_tiny', ['--pag-scale', '2'], /PAG needs the layers to perturb/],
    ['sana_pag_pipeline_tiny', ['--pag-scale', '2', '--pag-layers', 'blocks.7'], /matches none of transformer_blocks.0-1.attn1/],
    ['sana_pag_pipeline_tiny', ['--strength', '0.5'], /strength needs a start image/],
    ['sana_pag_pipeline_tiny', ['--max-timesteps', '1.2'], /apply to SANA-Sprint models/],
    ['sana_controlnet_pipeline_tiny', [], /this is a ControlNet pipeline: give a control image/],
    ['sana_pag_pipeline_tiny', ['--image', '/nonexistent.png'], /--image: \/nonexistent.png does not exist/],
    ['sana_pag_pipeline_tiny', ['--image', fixturePath('sana_pag_pipeline_tiny', 'manifest.json')], /is not a readable PNG image/],
  ];
  for (const [fixture, extra, message] of cases) {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sana-family-')), 'out.png');
    const r = spawnSync(process.execPath, [cli, 'generate', 'x', '--model', fixturePath(fixture, 'model'), '-o', out, '--quiet', '--no-binning', '--width', '96', '--height', '128', ...extra], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, extra.join(' '));
    assert.ok(!fs.existsSync(out), 'no image written');
  }
});
