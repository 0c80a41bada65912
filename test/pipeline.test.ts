// The whole pipeline against diffusers' SanaPipeline: per-step latents and the image (SANA.md §0, §5, §7).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { fixtureTensor } from './helpers/fixtures.js';
import { e2eFixtureRequest, runFixture } from './helpers/pipeline-parity.js';

test('sana_pipeline_tiny: given embeddings, CFG 4.5, 3 DPM steps, 256x192 (per-step latents and image)', async () => {
  const inputs = (n: string) => fixtureTensor('sana_pipeline_tiny', 'inputs', n);
  await runFixture(
    'sana_pipeline_tiny',
    { prompts: [''], steps: 3, guidanceScale: 4.5, width: 192, height: 256, binning: false, latents: inputs('latents') as HostTensor<'float32'> },
    {
      promptEmbeds: inputs('prompt_embeds') as HostTensor<'float32'>,
      promptMask: inputs('prompt_attention_mask') as HostTensor<'int64'>,
      negativeEmbeds: inputs('negative_prompt_embeds') as HostTensor<'float32'>,
      negativeMask: inputs('negative_prompt_attention_mask') as HostTensor<'int64'>,
    },
  );
});

test('sana_pipeline_tiny_e2e: from the prompt string through tokenizer, Gemma-2, 20 steps, decode', async () => {
  const result = await runFixture('sana_pipeline_tiny_e2e', e2eFixtureRequest());
  assert.equal(result.timings.stepSeconds.length, 20);
  assert.deepEqual(result.images.shape, [1, 3, 256, 192]);
});
