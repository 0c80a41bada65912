// AutoencoderDC against the dcae_tiny fixture (diffusers, fp32): encode, decode, recon and every stage output,
// through the user-facing loader and components; plus bad inputs and bad checkpoints.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { loadVaeDecode, loadVaeEncode } from '../src/models/dcae/component.js';
import { Dcae, loadDcae } from '../src/models/dcae/model.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest, loadTensors } from './helpers/fixtures.js';

const FIXTURE = 'dcae_tiny';
const manifest = loadManifest(FIXTURE);
const dir = fixturePath(FIXTURE, manifest.component_dir ?? 'component');
const tolerance = (name: string) => manifest.tolerance![name] as { atol: number; rtol: number; rel_l2: number };

/** The fixture README's rule for tensors without a listed tolerance: atol 1e-4 x max(1, max|ref|), rtol 1e-4, rel_l2 1e-5. */
function defaultTolerance(ref: HostTensor) {
  let maxAbs = 0;
  for (const v of ref.toFloat32()) maxAbs = Math.max(maxAbs, Math.abs(v));
  return { atol: 1e-4 * Math.max(1, maxAbs), rtol: 1e-4, rel_l2: 1e-5 };
}

/** NHWC -> NCHW (diffusers hooks see the decoder's norm_out input moved to channels-last). */
function nhwcToNchw(t: HostTensor): HostTensor {
  const [b, h, w, c] = t.shape;
  const src = t.toFloat32();
  const dst = new Float32Array(src.length);
  for (let n = 0; n < b; n++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let ch = 0; ch < c; ch++) dst[((n * c + ch) * h + y) * w + x] = src[((n * h + y) * w + x) * c + ch];
  return HostTensor.float32([b, c, h, w], dst);
}

describe('AutoencoderDC (dcae_tiny)', () => {
  let vae: Dcae;
  before(async () => {
    vae = await loadDcae(dir, { threads: 1, intermediates: true });
  });
  after(async () => vae?.release());

  it('reads the config, including scaling_factor', () => {
    assert.equal(vae.config.scalingFactor, 0.41407);
    assert.equal(vae.config.spatialCompressionRatio, 32);
    assert.equal(vae.config.downsampleBlockType, 'conv');
    assert.deepEqual(vae.config.decoderNormTypes, new Array(6).fill('rms_norm'));
  });

  it('encode matches latent, with every encoder stage', async () => {
    const out = await vae.runEncoder(fixtureTensor(FIXTURE, 'inputs', 'image'));
    assertClose(out.latent, fixtureTensor(FIXTURE, 'outputs', 'latent'), tolerance('latent'), 'latent');
    const names = [...loadTensors(FIXTURE, 'intermediates').keys()].filter((n) => n.startsWith('encoder'));
    assert.equal(names.length, 9);
    for (const name of names) {
      const ref = fixtureTensor(FIXTURE, 'intermediates', name);
      assert.ok(out[name], `no output for intermediate ${name}`);
      assertClose(out[name], ref, defaultTolerance(ref), name);
    }
  });

  it('decode of the encoded latent matches recon, with every decoder stage', async () => {
    const out = await vae.runDecoder(fixtureTensor(FIXTURE, 'outputs', 'latent'));
    assertClose(out.sample, fixtureTensor(FIXTURE, 'outputs', 'recon'), tolerance('recon'), 'recon');
    const names = [...loadTensors(FIXTURE, 'intermediates').keys()].filter((n) => n.startsWith('decoder'));
    assert.equal(names.length, 9);
    for (const name of names) {
      let ref = fixtureTensor(FIXTURE, 'intermediates', name);
      if (name === 'decoder.norm_out') ref = nhwcToNchw(ref);
      assert.ok(out[name], `no output for intermediate ${name}`);
      assertClose(out[name], ref, defaultTolerance(ref), name);
    }
  });

  it('decode matches sample', async () => {
    const sample = await vae.decode(fixtureTensor(FIXTURE, 'inputs', 'latent'));
    assertClose(sample, fixtureTensor(FIXTURE, 'outputs', 'sample'), tolerance('sample'), 'sample');
  });

  it('runs a batch of 2 and another size through the same graphs', async () => {
    const image = fixtureTensor(FIXTURE, 'inputs', 'image').toFloat32();
    const twice = new Float32Array(image.length * 2);
    twice.set(image);
    twice.set(image, image.length);
    const latent = await vae.encode(HostTensor.float32([2, 3, 128, 96], twice));
    const ref = fixtureTensor(FIXTURE, 'outputs', 'latent');
    assert.deepEqual(latent.shape, [2, 8, 4, 3]);
    const half = ref.size;
    const data = latent.toFloat32();
    assertClose(data.subarray(0, half), ref.toFloat32(), tolerance('latent'), 'batch row 0');
    assertClose(data.subarray(half), ref.toFloat32(), tolerance('latent'), 'batch row 1');
    const other = await vae.decode(HostTensor.float32([1, 8, 2, 5]));
    assert.deepEqual(other.shape, [1, 3, 64, 160]);
  });

  it('rejects inputs with the wrong channels or sizes, naming the input and the expected shape', async () => {
    await assert.rejects(vae.encode(HostTensor.float32([1, 4, 64, 64])), /input "image".*\[1, 4, 64, 64\].*\[B, 3, H, W\].*4 channels instead of 3/);
    await assert.rejects(vae.encode(HostTensor.float32([1, 3, 64, 80])), /input "image".*multiples of 32.*64 x 80 is not a multiple of 32/);
    await assert.rejects(vae.decode(HostTensor.float32([1, 3, 4, 4])), /input "latent".*\[B, 8, h, w\].*3 channels instead of 8/);
    await assert.rejects(vae.decode(HostTensor.float32([8, 4, 4])), /input "latent".*rank 3/);
  });
});

describe('AutoencoderDC components', () => {
  it('vae-encode and vae-decode take and return the README tensor names', async () => {
    const enc = await loadVaeEncode(dir, { threads: 1 });
    const dec = await loadVaeDecode(dir, { threads: 1 });
    try {
      assert.equal(enc.kind, 'vae-encode');
      assert.deepEqual(enc.inputNames, ['image']);
      assert.deepEqual(dec.inputNames, ['latent']);
      const { latent } = await enc.run({ image: fixtureTensor(FIXTURE, 'inputs', 'image') });
      assertClose(latent, fixtureTensor(FIXTURE, 'outputs', 'latent'), tolerance('latent'), 'component latent');
      const { sample } = await dec.run({ latent: fixtureTensor(FIXTURE, 'inputs', 'latent') });
      assertClose(sample, fixtureTensor(FIXTURE, 'outputs', 'sample'), tolerance('sample'), 'component sample');
      await assert.rejects(dec.run({ latents: latent }), /vae-decode: unexpected input\(s\) latents/);
    } finally {
      await enc.release();
      await dec.release();
    }
  });
});

describe('AutoencoderDC checkpoint checks', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcae-test-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function variant(name: string, edit: (t: Map<string, HostTensor>) => void, config?: (c: Record<string, unknown>) => void): string {
    const d = path.join(tmp, name);
    fs.mkdirSync(d);
    const tensors = readSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'));
    edit(tensors);
    writeSafetensors(path.join(d, 'diffusion_pytorch_model.safetensors'), tensors);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    config?.(cfg);
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg));
    return d;
  }

  it('reports missing, mis-shaped and unexpected keys of both halves in one error', async () => {
    const d = variant('broken', (t) => {
      t.delete('encoder.down_blocks.3.0.attn.to_k.weight');
      t.delete('decoder.norm_out.bias');
      t.set('decoder.up_blocks.0.1.conv1.bias', HostTensor.float32([9]));
      t.set('decoder.extra.weight', HostTensor.float32([2]));
    });
    await assert.rejects(loadDcae(d, { threads: 1 }), (e: Error) => {
      assert.match(e.message, /AutoencoderDC encoder: .*does not match/);
      assert.match(e.message, /missing \(1\):\n\s+encoder\.down_blocks\.3\.0\.attn\.to_k\.weight \[16,16\]/);
      assert.match(e.message, /AutoencoderDC decoder: /);
      assert.match(e.message, /decoder\.norm_out\.bias \[8\]/);
      assert.match(e.message, /decoder\.up_blocks\.0\.1\.conv1\.bias: file has \[9\], model expects \[8\]/);
      assert.match(e.message, /unexpected \(1\):\n\s+decoder\.extra\.weight/);
      return true;
    });
  });

  it('names the config key that is wrong', async () => {
    const d = variant('badconfig', () => {}, (c) => {
      c.decoder_norm_types = 'group_norm';
    });
    await assert.rejects(loadDcae(d), /config\.json: config key "decoder_norm_types" must be a valid value \(got "group_norm"\)/);
    const e = variant('badlayers', () => {}, (c) => {
      c.encoder_layers_per_block = [2, 2, 2];
    });
    await assert.rejects(loadDcae(e), /config key "encoder_layers_per_block" must be a list of 6 non-negative integers/);
  });
});
