// A one-shot pipeline run loads the transformer with prepacked GEMM weights only when the run is long enough for
// them to pay (src/pipeline/components.ts, PREPACK_MIN_LATENT_ROWS); a resident pipeline and an explicit prepack
// option keep what they ask for.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backend } from '../src/runtime/backend.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { PREPACK_MIN_LATENT_ROWS, loadSanaPipeline, prepackPays } from '../src/pipeline/components.js';
import { fixturePath } from './helpers/fixtures.js';
import { e2eFixtureRequest } from './helpers/pipeline-parity.js';

const model = fixturePath('sana_pipeline_tiny_e2e', 'model');

test('prepacking pays for 20 CFG steps at 512 px and 4 at 1024 px, not for a 2-step unguided SANA-Sprint image', () => {
  assert.equal(prepackPays(20 * 2 * 16 * 16), true); // 512 px: 16 x 16 latent cells, CFG doubles the rows
  assert.equal(prepackPays(4 * 2 * 32 * 32), true); // 1024 px, 4 CFG steps
  assert.equal(prepackPays(2 * 1 * 32 * 32), false); // Sprint at 1024 px: 2 steps, guidance embedded
  assert.equal(prepackPays(PREPACK_MIN_LATENT_ROWS - 1), false);
  assert.equal(prepackPays(PREPACK_MIN_LATENT_ROWS), true);
});

/** A backend that records the prepack option of every transformer session it makes. */
function recordingBackend(seen: (boolean | undefined)[]): Backend {
  return {
    name: nodeBackend.name,
    createSession(compiled, options) {
      if (compiled.name?.startsWith('sana_transformer')) seen.push(options?.prepack);
      return nodeBackend.createSession(compiled, options);
    },
  };
}

async function transformerPrepack(options: { keepResident?: boolean; prepack?: boolean }, images: number): Promise<(boolean | undefined)[]> {
  const seen: (boolean | undefined)[] = [];
  const { pipeline } = await loadSanaPipeline(model, { threads: 1, backend: recordingBackend(seen), ...options });
  const { latents: _given, ...request } = e2eFixtureRequest();
  const result = await pipeline.run({ ...request, numImagesPerPrompt: images, seed: 1 });
  assert.equal(result.images.shape[0], images);
  await pipeline.release();
  return seen;
}

test('one-shot runs: the transformer is prepacked for a long run and not for a short one; resident and explicit choices are kept', async () => {
  // the fixture's request: 192 x 256 px -> 6 x 8 latent cells, 20 CFG steps: 1920 rows per image
  const rowsPerImage = 20 * 2 * 6 * 8;
  assert.ok(rowsPerImage < PREPACK_MIN_LATENT_ROWS && 3 * rowsPerImage >= PREPACK_MIN_LATENT_ROWS);
  const short = await transformerPrepack({}, 1);
  assert.ok(short.length >= 2, 'caption and denoise sessions');
  assert.ok(short.every((p) => p === false), `one image: ${short.join(', ')}`);
  const long = await transformerPrepack({}, 3);
  assert.ok(long.every((p) => p === true), `three images: ${long.join(', ')}`);
  const resident = await transformerPrepack({ keepResident: true }, 1);
  assert.ok(resident.every((p) => p === undefined), `resident: ${resident.join(', ')} (the transformer's own default, prepacked)`);
  const explicit = await transformerPrepack({ prepack: true }, 1);
  assert.ok(explicit.every((p) => p === true), `prepack asked for: ${explicit.join(', ')}`);
});
