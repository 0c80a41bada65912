// SANA-Sprint through the library: SanaSprintPipeline (SCMScheduler, guidance embedding, step noise from the
// seed) and SanaSprintImg2ImgPipeline (the start image encoded and noised to the schedule cut by strength), per-step
// latents and images against diffusers' (fixtures sana_sprint_pipeline_tiny, sana_sprint_img2img_tiny).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { ScmScheduler, torchLinspaceF32 } from '../src/schedulers/scm.js';
import { assertClose } from './helpers/compare.js';
import { runFixture } from './helpers/pipeline-parity.js';
import { fixtureTensor, loadManifest } from './helpers/fixtures.js';

test('sana_sprint_pipeline_tiny: 2 TrigFlow steps (1.5708, 1.3), embedded guidance 4.5, seed 42 draws the step noise', async () => {
  const call = loadManifest('sana_sprint_pipeline_tiny').call as Record<string, any>;
  const result = await runFixture('sana_sprint_pipeline_tiny', {
    prompts: [call.prompt],
    steps: call.num_inference_steps,
    maxTimesteps: call.max_timesteps,
    intermediateTimesteps: call.intermediate_timesteps,
    guidanceScale: call.guidance_scale,
    width: call.width,
    height: call.height,
    binning: call.use_resolution_binning,
    maxSequenceLength: call.max_sequence_length,
    seed: call.seed,
    latents: fixtureTensor('sana_sprint_pipeline_tiny', 'inputs', 'latents') as HostTensor<'float32'>,
  });
  assert.deepEqual(result.images.shape, [1, 3, 128, 160]);
  assert.equal(result.request.steps, 2);
});

test('sana_sprint_img2img_tiny: strength 0.6 of 3 linspace steps, the image encoded and noised with the seed', async () => {
  const m = loadManifest('sana_sprint_img2img_tiny');
  const call = m.call as Record<string, any>;
  const image = fixtureTensor('sana_sprint_img2img_tiny', 'inputs', 'image') as HostTensor<'float32'>;
  await runFixture('sana_sprint_img2img_tiny', {
    prompts: [call.prompt],
    steps: call.num_inference_steps,
    maxTimesteps: call.max_timesteps,
    intermediateTimesteps: call.intermediate_timesteps,
    guidanceScale: call.guidance_scale,
    width: call.width,
    height: call.height,
    binning: call.use_resolution_binning,
    maxSequenceLength: call.max_sequence_length,
    seed: call.seed,
    image,
    strength: call.strength,
  });
});

test('SCMScheduler times: [max, intermediate, 0] for 2 steps, float32 linspace otherwise, as the fixtures list them', () => {
  const s = new ScmScheduler({ numTrainTimesteps: 1000, sigmaData: 0.5 });
  s.setTimesteps(2, { maxTimesteps: 1.5708, intermediateTimesteps: 1.3 });
  assert.deepEqual([...s.timesteps], (loadManifest('sana_sprint_pipeline_tiny').scheduler_timesteps as number[]).map(Math.fround));
  const img = loadManifest('sana_sprint_img2img_tiny');
  s.setTimesteps(3, { maxTimesteps: 1.5708, intermediateTimesteps: null });
  assertClose(s.timesteps, Float32Array.from(img.scheduler_timesteps as number[]), { atol: 1e-7 }, 'linspace times');
  assert.deepEqual([...torchLinspaceF32(1, 0, 5)], [1, 0.75, 0.5, 0.25, 0]);
  assert.throws(() => s.setTimesteps(3, { intermediateTimesteps: 1.3 }), /intermediate timesteps apply to 2 steps only/);
  assert.throws(() => s.setTimesteps(2, { timesteps: [1, 0] }), /steps \+ 1 = 3/);
});
