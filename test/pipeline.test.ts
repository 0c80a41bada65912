// The whole pipeline against diffusers' SanaPipeline: per-step latents and the image (SANA.md §0, §5, §7).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { PipelineEvent } from '../src/pipeline/sana-pipeline.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest } from './helpers/fixtures.js';

function stepSlice(all: HostTensor, i: number): Float32Array {
  const per = all.size / all.shape[0];
  return (all.data as Float32Array).subarray(i * per, (i + 1) * per);
}

async function runAndCompare(fixture: string, request: Parameters<Awaited<ReturnType<typeof loadSanaPipeline>>['pipeline']['generate']>[0], given?: Parameters<Awaited<ReturnType<typeof loadSanaPipeline>>['pipeline']['generate']>[1]) {
  const manifest = loadManifest(fixture);
  const tol = manifest.tolerance as Record<string, { atol: number; rtol?: number; rel_l2?: number }>;
  const expectedSteps = fixtureTensor(fixture, 'outputs', 'latents_after_step');
  const { pipeline } = await loadSanaPipeline(fixturePath(fixture, 'model'), { threads: 2 });
  const it = pipeline.generate(request, given);
  const steps: PipelineEvent[] = [];
  let result;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      result = r.value;
      break;
    }
    if (r.value.type === 'step') steps.push(r.value);
  }
  assert.equal(steps.length, expectedSteps.shape[0], 'one event per step');
  steps.forEach((ev, i) => {
    if (ev.type !== 'step') return;
    assertClose(ev.latents.data, stepSlice(expectedSteps, i), tol.latents_after_step, `latents after step ${i + 1}`);
  });
  assertClose(result.images, fixtureTensor(fixture, 'outputs', 'image'), tol.image, 'image');
  return result;
}

test('sana_pipeline_tiny: given embeddings, CFG 4.5, 3 DPM steps, 256x192 (per-step latents and image)', async () => {
  const inputs = (n: string) => fixtureTensor('sana_pipeline_tiny', 'inputs', n);
  await runAndCompare(
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
  const latents = fixtureTensor('sana_pipeline_tiny_e2e', 'inputs', 'latents') as HostTensor<'float32'>;
  const result = await runAndCompare('sana_pipeline_tiny_e2e', {
    prompts: ['A cat holding a sign that says Hello World'],
    negativePrompt: '',
    steps: 20,
    guidanceScale: 4.5,
    width: 192,
    height: 256,
    binning: false,
    maxSequenceLength: 300,
    latents,
  });
  assert.equal(result.timings.stepSeconds.length, 20);
  assert.deepEqual(result.images.shape, [1, 3, 256, 192]);
});
