// SanaTransformer2DModel against the reference fixtures (diffusers, fp32): output and every module output, loaded
// through the same loader a user's checkpoint goes through; strict loading and config errors; fp16 weights.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { HostTensor, elementCount, floatToHalf } from '../src/io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { loadTransformerComponent } from '../src/models/sana/component.js';
import { parseSanaTransformerConfig } from '../src/models/sana/config.js';
import { SanaTransformer } from '../src/models/sana/transformer.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest, loadTensors } from './helpers/fixtures.js';

const FIXTURES = ['sana_transformer_tiny', 'sana_transformer_tiny_v2'] as const;
const THREADS = 1;

/** The fixtures' rule (README "Tolerances") for tensors without their own manifest entry. */
function defaultTolerance(ref: HostTensor): { atol: number; rtol: number; rel_l2: number } {
  let maxAbs = 0;
  for (const v of ref.toFloat32()) maxAbs = Math.max(maxAbs, Math.abs(v));
  return { atol: 1e-4 * Math.max(1, maxAbs), rtol: 1e-4, rel_l2: 1e-5 };
}

function manifestTolerance(fixture: string, name: string): { atol: number; rtol: number; rel_l2?: number } {
  const tol = loadManifest(fixture).tolerance?.[name] as { atol: number; rtol: number; rel_l2?: number } | undefined;
  assert.ok(tol, `${fixture}: manifest has no tolerance for ${name}`);
  return tol;
}

const tempDirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-transformer-test-'));
  tempDirs.push(d);
  return d;
}
after(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

function componentDir(fixture: string): string {
  return fixturePath(fixture, loadManifest(fixture).component_dir ?? 'component');
}

function inputs(fixture: string) {
  const t = (n: string) => fixtureTensor(fixture, 'inputs', n);
  return {
    hidden_states: t('hidden_states'),
    encoder_hidden_states: t('encoder_hidden_states'),
    encoder_attention_mask: t('encoder_attention_mask'),
    timestep: t('timestep'),
  };
}

for (const fixture of FIXTURES) {
  describe(`SanaTransformer2DModel parity: ${fixture}`, () => {
    it('matches the reference output and every module output (caption graph + denoise graph)', async () => {
      const model = await SanaTransformer.load(componentDir(fixture), { debugOutputs: true, threads: THREADS });
      try {
        const x = inputs(fixture);
        const caption = await model.encodeCaption(x.encoder_hidden_states, x.encoder_attention_mask);
        const out = await model.denoiseAll(x.hidden_states, x.timestep, caption);
        assertClose(out.sample, fixtureTensor(fixture, 'outputs', 'sample'), manifestTolerance(fixture, 'sample'), `${fixture} sample`);
        const intermediates = loadTensors(fixture, 'intermediates');
        assert.ok(intermediates.size >= 9, 'fixture lists the module outputs');
        for (const [name, ref] of intermediates) {
          assert.ok(out[name], `graph has no debug output for intermediate "${name}"`);
          assertClose(out[name], ref, defaultTolerance(ref), `${fixture} ${name}`);
        }
      } finally {
        await model.release();
      }
    });

    it('runs as the `transformer` component (one-shot, no debug outputs)', async () => {
      const runner = await loadTransformerComponent(componentDir(fixture), { threads: THREADS });
      try {
        assert.deepEqual([...runner.inputNames], ['hidden_states', 'encoder_hidden_states', 'encoder_attention_mask', 'timestep']);
        const out = await runner.run(inputs(fixture));
        assert.deepEqual(Object.keys(out), ['sample']);
        assertClose(out.sample, fixtureTensor(fixture, 'outputs', 'sample'), manifestTolerance(fixture, 'sample'), `${fixture} sample`);
      } finally {
        await runner.release();
      }
    });
  });
}
