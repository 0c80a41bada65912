// ControlNet through the library against diffusers' SanaControlNetPipeline (sana_controlnet_pipeline_tiny: a
// one-block SanaControlNetModel, control.png as the control image, scale 0.7, CFG 4.5, 4 DPM steps, 128 x 96).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { decodePng } from '../src/io/png.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { assertClose } from './helpers/compare.js';
import { assertMatchesFixture } from './helpers/pipeline-parity.js';
import { fixturePath, fixtureTensor, loadManifest } from './helpers/fixtures.js';

const FIXTURE = 'sana_controlnet_pipeline_tiny';

/** control.png as the pipeline sees a PIL image: 8-bit values / 255, planar [1, 3, H, W]. */
function controlImage(): HostTensor<'float32'> {
  const png = decodePng(fs.readFileSync(fixturePath(FIXTURE, 'control.png')));
  const plane = png.width * png.height;
  const data = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) data[c * plane + p] = Math.fround(png.rgb[p * 3 + c] / 255);
  return HostTensor.float32([1, 3, png.height, png.width], data);
}

test('sana_controlnet_pipeline_tiny: residuals after block 1, per-step latents and image', async () => {
  const m = loadManifest(FIXTURE);
  const call = m.call as Record<string, any>;
  const control = controlImage();
  assertClose(control, fixtureTensor(FIXTURE, 'inputs', 'control_image'), { atol: 0 }, 'control.png / 255');
  const { pipeline } = await loadSanaPipeline(fixturePath(FIXTURE, 'model'), { threads: 2 });
  const request = {
    prompts: [call.prompt],
    negativePrompt: call.negative_prompt,
    steps: call.num_inference_steps,
    guidanceScale: call.guidance_scale,
    width: call.width,
    height: call.height,
    binning: call.use_resolution_binning,
    maxSequenceLength: call.max_sequence_length,
    controlImage: control,
    controlScale: call.controlnet_conditioning_scale,
    latents: fixtureTensor(FIXTURE, 'inputs', 'latents') as HostTensor<'float32'>,
  };
  const result = await assertMatchesFixture(FIXTURE, pipeline, request);

  // The control really steers: scale 0 gives another image; a ControlNet pipeline without a control image is refused.
  const unscaled = await pipeline.run({ ...request, controlScale: 0 });
  assert.ok(unscaled.images.data.some((v, i) => Math.abs(v - result.images.data[i]) > 1e-4));
  await assert.rejects(pipeline.run({ ...request, controlImage: undefined, controlScale: undefined }), /this is a ControlNet pipeline: give a control image/);
  await pipeline.release();
});

test('a control image for a pipeline without a ControlNet is refused', async () => {
  const { pipeline } = await loadSanaPipeline(fixturePath('sana_pag_pipeline_tiny', 'model'), { threads: 2 });
  await assert.rejects(
    pipeline.run({ prompts: ['x'], steps: 1, width: 96, height: 128, binning: false, controlImage: controlImage() }),
    /a control image needs a ControlNet pipeline/,
  );
});
