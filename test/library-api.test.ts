// The library entry point: a user generates an image with a few lines, as the README shows.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSanaPipeline, toRgbImages } from '../src/index.js';
import { fixturePath } from './helpers/fixtures.js';

test('library: load a pipeline folder and generate, with per-step events', async () => {
  const { pipeline } = await loadSanaPipeline(fixturePath('sana_pipeline_tiny_e2e', 'model'), { threads: 2 });
  const steps: number[] = [];
  const run = pipeline.generate({ prompts: ['a red apple'], steps: 3, seed: 5, width: 64, height: 96, binning: false });
  let result;
  for (;;) {
    const r = await run.next();
    if (r.done) {
      result = r.value;
      break;
    }
    if (r.value.type === 'step') steps.push(r.value.step);
  }
  assert.deepEqual(steps, [1, 2, 3]);
  const [img] = toRgbImages(result.images);
  assert.equal(img.width, 64);
  assert.equal(img.height, 96);
  assert.equal(result.latents.shape.join(), '1,8,3,2');
  const again = await pipeline.run({ prompts: ['a red apple'], steps: 3, seed: 5, width: 64, height: 96, binning: false });
  assert.deepEqual(again.images.data, result.images.data, 'same seed, same image');
  const other = await pipeline.run({ prompts: ['a red apple'], steps: 3, seed: 6, width: 64, height: 96, binning: false });
  assert.notDeepEqual(other.images.data, result.images.data, 'another seed, another image');
  await pipeline.release();
});
