// Perturbed-attention guidance through the library against diffusers' SanaPAGPipeline (sana_pag_pipeline_tiny:
// CFG 4.5 + PAG 2.0 on transformer_blocks.1, 4 DPM steps, 96 x 128), and the layer patterns' rules.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { resolvePagLayers } from '../src/pipeline/guidance.js';
import { assertMatchesFixture } from './helpers/pipeline-parity.js';
import { fixturePath, fixtureTensor, loadManifest } from './helpers/fixtures.js';

const FIXTURE = 'sana_pag_pipeline_tiny';

test('sana_pag_pipeline_tiny: [negative, positive, perturbed] batch, identity attention in block 1, per-step latents and image', async () => {
  const m = loadManifest(FIXTURE);
  const call = m.call as Record<string, any>;
  assert.deepEqual(resolvePagLayers(call.pag_applied_layers, 2).map((k) => `transformer_blocks.${k}.attn1`), m.pag_layers_resolved);
  const { pipeline } = await loadSanaPipeline(fixturePath(FIXTURE, 'model'), { threads: 2 });
  const result = await assertMatchesFixture(FIXTURE, pipeline, {
    prompts: [call.prompt],
    negativePrompt: call.negative_prompt,
    steps: call.num_inference_steps,
    guidanceScale: call.guidance_scale,
    width: call.width,
    height: call.height,
    binning: call.use_resolution_binning,
    maxSequenceLength: call.max_sequence_length,
    pagScale: call.pag_scale,
    pagLayers: call.pag_applied_layers,
    latents: fixtureTensor(FIXTURE, 'inputs', 'latents') as HostTensor<'float32'>,
  });

  // Without PAG the same call gives another image: the perturbation is really applied.
  const plain = await pipeline.run({ ...result.request, prompts: [call.prompt], pagScale: 0, latents: fixtureTensor(FIXTURE, 'inputs', 'latents') as HostTensor<'float32'> });
  assert.ok(plain.images.data.some((v, i) => Math.abs(v - result.images.data[i]) > 1e-3));
});

test('PAG layer patterns are regular expressions searched in transformer_blocks.K.attn1', () => {
  assert.deepEqual(resolvePagLayers(['transformer_blocks.1'], 20), [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  assert.deepEqual(resolvePagLayers(['blocks\\.(2|4)\\.', 'transformer_blocks.4.attn1'], 8), [2, 4]);
  assert.throws(() => resolvePagLayers(['transformer_blocks.9'], 4), /matches none of transformer_blocks.0-3.attn1/);
  assert.throws(() => resolvePagLayers(['(unclosed'], 4), /not a valid regular expression/);
});
