// Whether the transformer's GEMM weights are prepacked at load, chosen per pipeline (src/pipeline/components.ts):
// a one-shot SANA-Sprint run (1-4 steps) skips it, since prepacking costs more at load than it saves in so few
// steps; a multi-step pipeline, a resident (server) one and an explicit option keep ONNX Runtime's prepacking.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pipelineComponents } from '../src/pipeline/components.js';
import type { Backend, SessionOptions } from '../src/runtime/backend.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { fixturePath } from './helpers/fixtures.js';

/** The prepack option of every session the denoiser's load creates. */
async function denoiserPrepack(fixture: string, options: { keepResident?: boolean; prepack?: boolean } = {}): Promise<(boolean | undefined)[]> {
  const seen: (boolean | undefined)[] = [];
  const backend: Backend = {
    name: 'recording',
    createSession: (model, o?: SessionOptions) => {
      seen.push(o?.prepack);
      return nodeBackend.createSession(model, o);
    },
  };
  const denoiser = await pipelineComponents(fixturePath(fixture, 'model'), { ...options, backend }).loadDenoiser();
  await denoiser.release();
  assert.ok(seen.length >= 2, `the denoiser opened ${seen.length} sessions (caption and denoise expected)`);
  return seen;
}

test('a one-shot SANA-Sprint pipeline loads its transformer without prepacking', async () => {
  assert.ok((await denoiserPrepack('sana_sprint_pipeline_tiny')).every((p) => p === false));
});

test('a resident SANA-Sprint pipeline, a 20-step SANA pipeline and an explicit prepack option keep prepacking', async () => {
  assert.ok((await denoiserPrepack('sana_sprint_pipeline_tiny', { keepResident: true })).every((p) => p === undefined));
  assert.ok((await denoiserPrepack('sana_pipeline_tiny')).every((p) => p === undefined));
  assert.ok((await denoiserPrepack('sana_sprint_pipeline_tiny', { prepack: true })).every((p) => p === true));
});
