// Runs a pipeline request and compares it with a pipeline fixture: one step event per reference step, the latents
// after each step and the final image, within the manifest's tolerances.

import assert from 'node:assert/strict';
import { loadSanaPipeline } from '../../src/pipeline/components.js';
import { GenerateRequest } from '../../src/pipeline/request.js';
import { GivenEmbeddings, PipelineResult, SanaPipeline } from '../../src/pipeline/sana-pipeline.js';
import { HostTensor } from '../../src/io/host-tensor.js';
import { assertClose } from './compare.js';
import { fixturePath, fixtureTensor, loadManifest } from './fixtures.js';

type Tolerance = { atol: number; rtol?: number; rel_l2?: number };

export async function assertMatchesFixture(
  fixture: string,
  pipeline: SanaPipeline,
  request: GenerateRequest,
  given?: GivenEmbeddings,
): Promise<PipelineResult> {
  const tol = loadManifest(fixture).tolerance as Record<string, Tolerance>;
  const expected = fixtureTensor(fixture, 'outputs', 'latents_after_step');
  const per = expected.size / expected.shape[0];
  const run = pipeline.generate(request, given);
  let step = 0;
  for (;;) {
    const r = await run.next();
    if (r.done) {
      assert.equal(step, expected.shape[0], 'one event per denoising step');
      assertClose(r.value.images, fixtureTensor(fixture, 'outputs', 'image'), tol.image, 'image');
      return r.value;
    }
    if (r.value.type !== 'step') continue;
    assert.ok(step < expected.shape[0], `more steps than the reference's ${expected.shape[0]}`);
    const reference = (expected.data as Float32Array).subarray(step * per, (step + 1) * per);
    assertClose(r.value.latents.data, reference, tol.latents_after_step, `latents after step ${step + 1}`);
    step++;
  }
}

/** The request sana_pipeline_tiny_e2e was made with (its README): the prompt string through the whole pipeline. */
export function e2eFixtureRequest(): GenerateRequest {
  return {
    prompts: ['A cat holding a sign that says Hello World'],
    negativePrompt: '',
    steps: 20,
    guidanceScale: 4.5,
    width: 192,
    height: 256,
    binning: false,
    maxSequenceLength: 300,
    latents: fixtureTensor('sana_pipeline_tiny_e2e', 'inputs', 'latents') as HostTensor<'float32'>,
  };
}

/** As assertMatchesFixture, on the fixture's own model folder. */
export async function runFixture(fixture: string, request: GenerateRequest, given?: GivenEmbeddings): Promise<PipelineResult> {
  const { pipeline } = await loadSanaPipeline(fixturePath(fixture, 'model'), { threads: 2 });
  return assertMatchesFixture(fixture, pipeline, request, given);
}
