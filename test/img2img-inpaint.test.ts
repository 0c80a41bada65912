// Image-to-image and inpainting on the base (flow-matching) pipeline. There is no diffusers reference for SANA
// img2img, so the pipeline is checked against a transcription of the usual flow-matching definition written here
// (SD3's img2img): N steps, t_start = int(max(N - min(N strength, N), 0)); x = sigma_start noise + (1 - sigma_start)
// z0 with z0 = encode(2 image - 1) scaling_factor and noise the generator's first draw; the solver runs steps
// t_start .. N - 1 from an empty history. Inpainting keeps the unmasked region: its latent cells follow the image
// at every step and its pixels are the input's own.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { imageTensorFromPng } from '../src/pipeline/image-input.js';
import { denormalize } from '../src/pipeline/postprocess.js';
import { TorchGenerator, torchRandn } from '../src/random/torch-rng.js';
import { createScheduler } from '../src/schedulers/scheduler-config.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath } from './helpers/fixtures.js';

const MODEL = fixturePath('sana_pipeline_tiny_e2e', 'model');
const image = () => imageTensorFromPng(fs.readFileSync(fixturePath('sana_sprint_img2img_tiny', 'input.png')), 'input.png'); // [1, 3, 128, 96]
const PROMPT = 'a small red house';
const SEED = 5;

test('base-pipeline img2img equals the flow-matching definition, transcribed step by step', async () => {
  const { pipeline } = await loadSanaPipeline(MODEL, { threads: 2 });
  const steps = 10;
  const strength = 0.5;
  const result = await pipeline.run({ prompts: [PROMPT], steps, guidanceScale: 4.5, seed: SEED, width: 96, height: 128, binning: false, image: image(), strength });

  // The transcription, from the components.
  const c = pipeline.components;
  const scale = Math.fround(c.vae.scalingFactor);
  const encoder = await c.loadImageEncoder();
  const z0 = (await encoder.encode(HostTensor.float32([1, 3, 128, 96], image().data.map((v) => 2 * v - 1)))).data.map((v) => v * scale);
  await encoder.release();
  const shape = [1, c.transformer.latentChannels, 4, 3];
  const noise = torchRandn(shape, new TorchGenerator(SEED)).data;
  const scheduler = createScheduler(c.schedulerConfig);
  scheduler.setTimesteps(steps);
  const tStart = Math.trunc(Math.max(steps - Math.min(steps * strength, steps), 0));
  assert.equal(tStart, 5);
  scheduler.setBeginIndex(tStart);
  const sigma = scheduler.sigmas[tStart];
  let x: Float32Array = z0.map((v, k) => sigma * noise[k] + (1 - sigma) * v);
  const prompts = await c.loadPromptEncoder();
  const e = await prompts.encode([PROMPT], '', { maxSequenceLength: 300, withNegative: true });
  await prompts.release();
  const denoiser = await c.loadDenoiser();
  const cat = <T extends HostTensor<'float32'> | HostTensor<'int64'>>(a: T, b: T) => {
    const data = new (a.data.constructor as any)(a.size + b.size);
    data.set(a.data, 0);
    data.set(b.data, a.size);
    return new HostTensor(a.dtype, [a.shape[0] * 2, ...a.shape.slice(1)], data) as T;
  };
  const caption = await denoiser.prepareCaption(cat(e.negativeEmbeds!, e.promptEmbeds), cat(e.negativeMask!, e.promptMask));
  for (let i = tStart; i < steps; i++) {
    const both = HostTensor.float32([2, ...shape.slice(1)], Float32Array.from([...x, ...x]));
    const t = HostTensor.float32([2], new Float32Array(2).fill(scheduler.timesteps[i] * c.transformer.timestepScale));
    const v = (await denoiser.predict(both, t, caption)).data;
    const half = v.length / 2;
    const guided = new Float32Array(half).map((_, k) => v[k] + 4.5 * (v[half + k] - v[k]));
    x = scheduler.step(guided, x);
  }
  await denoiser.release();
  assertClose(result.latents.data, x, { atol: 1e-5, rtol: 1e-5 }, 'final latents');
  const decoder = await c.loadDecoder();
  const decoded = await decoder.decode(HostTensor.float32(shape, x.map((v) => v / scale)));
  await decoder.release();
  assertClose(result.images, denormalize(decoded), { atol: 1e-4 }, 'image');
  assert.deepEqual(result.request.strength, 0.5);
});

test('inpainting keeps the unmasked region exactly, in latents and in pixels, and repaints the rest', async () => {
  const { pipeline } = await loadSanaPipeline(MODEL, { threads: 2 });
  const input = image();
  // repaint the left half (columns 0..47 of 96: latent columns 0 and the left half of 1 -> cells 0 and 1 repainted)
  const mask = HostTensor.float32([1, 1, 128, 96], new Float32Array(128 * 96).map((_, p) => (p % 96 < 40 ? 1 : 0)));
  const result = await pipeline.run({ prompts: [PROMPT], steps: 6, seed: SEED, width: 96, height: 128, binning: false, image: input, mask });
  assert.equal(result.request.strength, 1, 'inpainting defaults to the full schedule');
  const img = result.images.data;
  const plane = 128 * 96;
  let changed = 0;
  for (let ch = 0; ch < 3; ch++) {
    for (let p = 0; p < plane; p++) {
      if (p % 96 >= 40) assert.equal(img[ch * plane + p], input.data[ch * plane + p], `kept pixel ${p} of channel ${ch}`);
      else if (Math.abs(img[ch * plane + p] - input.data[ch * plane + p]) > 0.02) changed++;
    }
  }
  assert.ok(changed > 1000, `the masked region was repainted (${changed} values changed)`);

  // In latent space, the kept cells (latent column 2: pixels 64..95) end exactly at the image's latents.
  const encoder = await pipeline.components.loadImageEncoder();
  const z0 = await encoder.encode(HostTensor.float32(input.shape, input.data.map((v) => 2 * v - 1)));
  await encoder.release();
  const scale = Math.fround(pipeline.components.vae.scalingFactor);
  const [, c, h, w] = result.latents.shape;
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const k = (ch * h + y) * w + 2;
      assert.equal(result.latents.data[k], Math.fround(z0.data[k] * scale), `kept latent cell (${ch}, ${y}, 2)`);
    }
  }
  await assert.rejects(pipeline.run({ prompts: [PROMPT], steps: 2, width: 96, height: 128, binning: false, mask }), /an inpainting mask needs the image/);
  const wrongSize = HostTensor.float32([1, 1, 64, 96], new Float32Array(64 * 96));
  await assert.rejects(pipeline.run({ prompts: [PROMPT], steps: 2, width: 96, height: 128, binning: false, image: input, mask: wrongSize }), /the mask is 96x64 but the image is 96x128/);
});
