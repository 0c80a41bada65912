// An untiled DC-AE pass that would not fit in the memory available: the estimate (hand-derived from the widest
// stage), the plan (whole batch, image by image, tiles, or a clear error before any work), and on the dcae_tiny
// fixture that each plan gives the result of the path it stands for: image by image the batched result, tiles the
// explicitly tiled result, with the notice a user sees.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import type { DcaeConfig } from '../src/models/dcae/config.js';
import { PASS_MEMORY_SHARE, WORKING_FACTOR, planPass, untiledPassBytes, widestStageBytesPerPixel } from '../src/models/dcae/memory-plan.js';
import { Dcae, loadDcae } from '../src/models/dcae/model.js';
import { DEFAULT_MODEL_DIR, pipelineComponents } from '../src/pipeline/components.js';
import { PipelineComponents, SanaPipeline } from '../src/pipeline/sana-pipeline.js';
import { fixturePath, fixtureTensor } from './helpers/fixtures.js';

const GiB = 2 ** 30;
// The real f32c32 decoder's stage widths (SANA.md §3): stage 0 (full resolution) holds 128 float32 per pixel.
const wide = { decoderBlockOutChannels: [128, 256, 512, 512, 1024, 1024], encoderBlockOutChannels: [128, 256, 512, 512, 1024, 1024] } as unknown as DcaeConfig;

describe('DC-AE pass memory estimate and plan', () => {
  it('the widest stage per full-resolution pixel is the largest 4 C_s / 4^s', () => {
    assert.equal(widestStageBytesPerPixel([128, 256, 512, 512, 1024, 1024]), 512); // 512, 256, 128, 32, 16, 4
    assert.equal(widestStageBytesPerPixel([16, 128, 64]), 128); // 64, 128, 16
  });

  it('a 4096 px decode with the real widths needs tens of GiB, a 512 px tile about 1 GiB', () => {
    // 8.5 x 512 B/px x 4096^2 px = 68 GiB; x 512^2 px = 1.06 GiB
    assert.equal(untiledPassBytes(wide, 'decode', 1, 4096, 4096), WORKING_FACTOR.decode * 512 * 4096 * 4096);
    assert.ok(untiledPassBytes(wide, 'decode', 1, 4096, 4096) > 60 * GiB);
    assert.ok(Math.abs(untiledPassBytes(wide, 'decode', 1, 512, 512) / GiB - 1.0625) < 1e-9);
  });

  it('plans the whole batch, then image by image, then tiles, then refuses', () => {
    const one1024 = untiledPassBytes(wide, 'decode', 1, 1024, 1024); // 4.25 GiB
    const avail = (bytes: number) => bytes / PASS_MEMORY_SHARE;
    assert.deepEqual(planPass(wide, 'decode', 2, 1024, 1024, avail(2 * one1024), 512), { mode: 'whole' });
    assert.deepEqual(planPass(wide, 'decode', 2, 1024, 1024, avail(2 * one1024 - 1), 512), { mode: 'per-image' });
    const tiled = planPass(wide, 'decode', 1, 1024, 1024, avail(one1024 - 1), 512);
    assert.equal(tiled.mode, 'tiled');
    assert.match((tiled as { notice: string }).notice, /untiled VAE decode of a 1024x1024 image needs about 4\.3 GiB .*decoding in 512 px tiles/);
    assert.throws(
      () => planPass(wide, 'decode', 1, 4096, 4096, 1 * GiB, 512),
      /DC-AE decode: even one 512 px tile needs about 1\.1 GiB of working memory and 1\.0 GiB is available/,
    );
  });
});

describe('DC-AE passes follow the plan (dcae_tiny)', () => {
  const dir = fixturePath('dcae_tiny', 'component');
  let budget = Infinity;
  let planned: Dcae;
  let plain: Dcae;
  let tiled: Dcae;
  before(async () => {
    planned = await loadDcae(dir, { threads: 1, availableMemory: () => budget });
    plain = await loadDcae(dir, { threads: 1 });
    tiled = await loadDcae(dir, { threads: 1, tiling: true });
  });
  after(async () => {
    await planned?.release();
    await plain?.release();
    await tiled?.release();
  });

  /** [batch, 8, h, w]: the fixture latent [1, 8, 4, 3] tiled over h x w, scaled per image so images differ. */
  function latent(batch: number, h: number, w: number): HostTensor {
    const z0 = fixtureTensor('dcae_tiny', 'outputs', 'latent').toFloat32();
    const z = HostTensor.float32([batch, 8, h, w]);
    for (let b = 0; b < batch; b++)
      for (let c = 0; c < 8; c++)
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) z.data[((b * 8 + c) * h + y) * w + x] = (1 + b) * z0[(c * 4 + (y % 4)) * 3 + (x % 3)];
    return z;
  }

  it('a batch too large for memory is decoded image by image, to the batched result', async () => {
    const z = latent(2, 4, 3);
    budget = Infinity;
    const whole = await planned.decode(z);
    const notices: string[] = [];
    const one = untiledPassBytes(planned.config, 'decode', 1, 128, 96);
    budget = (1.5 * one) / PASS_MEMORY_SHARE;
    const byImage = await planned.decode(z, undefined, (n) => notices.push(n));
    assert.deepEqual(byImage.shape, [2, 3, 128, 96]);
    assert.deepEqual(Array.from(byImage.toFloat32()), Array.from(whole.toFloat32()));
    assert.deepEqual(notices, [], 'image by image gives the same image: nothing to tell');
  });

  it('an image too large for memory is decoded in diffusers 512 px tiles, with a notice', async () => {
    const z = latent(2, 20, 18); // 640 x 576 px: 2 x 2 tiles of 512 every 448
    const one = untiledPassBytes(planned.config, 'decode', 1, 640, 576);
    budget = (0.9 * one) / PASS_MEMORY_SHARE;
    const notices: string[] = [];
    const tiles: number[] = [];
    const out = await planned.decode(z, (done) => tiles.push(done), (n) => notices.push(n));
    const reference = await tiled.decode(z);
    assert.deepEqual(out.shape, [2, 3, 640, 576]);
    assert.deepEqual(Array.from(out.toFloat32()), Array.from(reference.toFloat32()));
    assert.equal(notices.length, 1);
    assert.match(notices[0], /untiled VAE decode of a 576x640 image needs about .* GiB and .* GiB is available: decoding in 512 px tiles/);
    assert.deepEqual(tiles, [1, 2, 3, 4, 1, 2, 3, 4], 'four tiles per image, image by image');
    // and untiled it is not the same image: the plan really changed the path
    const untiled = await plain.decode(z);
    assert.notDeepEqual(Array.from(untiled.toFloat32()), Array.from(out.toFloat32()));
  });

  it('an encode too large for memory runs in tiles too', async () => {
    const image = HostTensor.float32([1, 3, 640, 576]);
    for (let i = 0; i < image.size; i++) image.data[i] = Math.sin(i * 0.001);
    budget = (0.9 * untiledPassBytes(planned.config, 'encode', 1, 640, 576)) / PASS_MEMORY_SHARE;
    const notices: string[] = [];
    const out = await planned.encode(image, undefined, (n) => notices.push(n));
    assert.deepEqual(Array.from(out.toFloat32()), Array.from((await tiled.encode(image)).toFloat32()));
    assert.match(notices[0] ?? '', /untiled VAE encode of a 576x640 image .* encoding in 512 px tiles/);
  });

  it('when not even one tile fits, the pass fails before running, naming the need and what is available', async () => {
    budget = 1024;
    await assert.rejects(planned.decode(latent(1, 20, 18)), /DC-AE decode: even one 512 px tile needs about .* GiB of working memory/);
  });
});

describe('the pipeline passes the VAE notices on as warnings', () => {
  it('a decoder or image encoder notice is a warning event and in the result, once each', async () => {
    const c = pipelineComponents(DEFAULT_MODEL_DIR, { threads: 1 });
    const components: PipelineComponents = {
      ...c,
      loadDecoder: async () => {
        const d = await c.loadDecoder();
        return { ...d, release: d.release.bind(d), decode: async (x, onTile, onNotice) => (onNotice?.('decoder notice'), d.decode(x, onTile)) };
      },
      loadImageEncoder: async () => {
        const e = await c.loadImageEncoder();
        return { ...e, release: e.release.bind(e), encode: async (x, onNotice) => (onNotice?.('encoder notice'), e.encode(x)) };
      },
    };
    const pipeline = new SanaPipeline(components);
    const image = HostTensor.float32([1, 3, 256, 256], new Float32Array(3 * 256 * 256).fill(0.5));
    const events: string[] = [];
    const it = pipeline.generate({ prompts: ['a red circle'], steps: 2, seed: 1, image, strength: 0.5 });
    let result;
    for (;;) {
      const r = await it.next();
      if (r.done) {
        result = r.value;
        break;
      }
      if (r.value.type === 'warning') events.push(r.value.message);
    }
    await pipeline.release();
    // (a grey start image after 2 steps may also be flagged flat: only the notices are looked at)
    const notices = (ws: readonly string[]) => ws.filter((w) => w.endsWith(' notice'));
    assert.deepEqual(notices(events), ['encoder notice', 'decoder notice']);
    assert.deepEqual(notices(result.warnings), ['encoder notice', 'decoder notice']);
  });
});
