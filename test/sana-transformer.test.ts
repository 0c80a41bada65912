// SanaTransformer2DModel against the reference fixtures (diffusers, fp32): output and every module output, loaded
// through the same loader a user's checkpoint goes through; strict loading and config errors; fp16 weights.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { HostTensor, elementCount, floatToHalf } from '../src/io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { loadTransformerComponent } from '../src/models/sana/component.js';
import { parseSanaTransformerConfig } from '../src/models/sana/config.js';
import { SanaTransformer } from '../src/models/sana/transformer.js';
import { webBackend } from '../src/runtime/web-backend.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest, loadTensors } from './helpers/fixtures.js';

const FIXTURES = ['sana_transformer_tiny', 'sana_transformer_tiny_v2'] as const;
const THREADS = 1;

/** The fixtures' rule (README "Tolerances") for tensors without their own manifest entry. */
function defaultTolerance(ref: HostTensor): { atol: number; rtol: number; rel_l2: number } {
  let maxAbs = 0;
  for (const v of ref.toFloat32()) maxAbs = Math.max(maxAbs, Math.abs(v));
  return { atol: 1e-4 * Math.max(1, maxAbs), rtol: 1e-4, rel_l2: 1e-5 };
}

function manifestTolerance(fixture: string, name: string): { atol: number; rtol: number; rel_l2?: number } {
  const tol = loadManifest(fixture).tolerance?.[name] as { atol: number; rtol: number; rel_l2?: number } | undefined;
  assert.ok(tol, `${fixture}: manifest has no tolerance for ${name}`);
  return tol;
}

const tempDirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-transformer-test-'));
  tempDirs.push(d);
  return d;
}
after(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

function componentDir(fixture: string): string {
  return fixturePath(fixture, loadManifest(fixture).component_dir ?? 'component');
}

function inputs(fixture: string) {
  const t = (n: string) => fixtureTensor(fixture, 'inputs', n);
  return {
    hidden_states: t('hidden_states'),
    encoder_hidden_states: t('encoder_hidden_states'),
    encoder_attention_mask: t('encoder_attention_mask'),
    timestep: t('timestep'),
  };
}

for (const fixture of FIXTURES) {
  describe(`SanaTransformer2DModel parity: ${fixture}`, () => {
    it('matches the reference output and every module output (caption graph + denoise graph)', async () => {
      const model = await SanaTransformer.load(componentDir(fixture), { debugOutputs: true, threads: THREADS });
      try {
        const x = inputs(fixture);
        const caption = await model.encodeCaption(x.encoder_hidden_states, x.encoder_attention_mask);
        const out = await model.denoiseAll(x.hidden_states, x.timestep, caption);
        assertClose(out.sample, fixtureTensor(fixture, 'outputs', 'sample'), manifestTolerance(fixture, 'sample'), `${fixture} sample`);
        const intermediates = loadTensors(fixture, 'intermediates');
        assert.ok(intermediates.size >= 9, 'fixture lists the module outputs');
        for (const [name, ref] of intermediates) {
          assert.ok(out[name], `graph has no debug output for intermediate "${name}"`);
          assertClose(out[name], ref, defaultTolerance(ref), `${fixture} ${name}`);
        }
      } finally {
        await model.release();
      }
    });

    it('runs in the browser flavour (onnxruntime-web, wasm) to the same result', async () => {
      const model = await SanaTransformer.load(componentDir(fixture), { backend: webBackend, threads: 1 });
      try {
        const sample = await model.forward(inputs(fixture));
        assertClose(sample, fixtureTensor(fixture, 'outputs', 'sample'), manifestTolerance(fixture, 'sample'), `${fixture} web sample`);
      } finally {
        await model.release();
      }
    });

    it('runs as the `transformer` component (one-shot, no debug outputs)', async () => {
      const runner = await loadTransformerComponent(componentDir(fixture), { threads: THREADS });
      try {
        assert.deepEqual([...runner.inputNames], ['hidden_states', 'encoder_hidden_states', 'encoder_attention_mask', 'timestep']);
        const out = await runner.run(inputs(fixture));
        assert.deepEqual(Object.keys(out), ['sample']);
        assertClose(out.sample, fixtureTensor(fixture, 'outputs', 'sample'), manifestTolerance(fixture, 'sample'), `${fixture} sample`);
      } finally {
        await runner.release();
      }
    });
  });
}

/** Copies a fixture's component folder into a temp dir, letting `edit` change the tensors and config. */
function modifiedCheckpoint(
  fixture: string,
  edit: (tensors: Map<string, HostTensor>, config: Record<string, unknown>) => void,
  weightsName = 'diffusion_pytorch_model.safetensors',
): string {
  const src = componentDir(fixture);
  const dir = tempDir();
  const tensors = readSafetensors(path.join(src, 'diffusion_pytorch_model.safetensors'));
  const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  edit(tensors, config);
  writeSafetensors(path.join(dir, weightsName), tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

function toHalf(t: HostTensor): HostTensor {
  const src = t.toFloat32();
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = floatToHalf(src[i]);
  return new HostTensor('float16', t.shape, out);
}

describe('SanaTransformer2DModel loading', () => {
  const fixture = 'sana_transformer_tiny';

  it('reports a missing, an unexpected and a mis-shaped key in one error', async () => {
    const dir = modifiedCheckpoint(fixture, (t) => {
      t.delete('transformer_blocks.1.attn2.to_k.bias'); // a caption-graph weight
      t.set('transformer_blocks.0.attn1.to_qkv.weight', HostTensor.float32([3], [1, 2, 3]));
      const w = t.get('transformer_blocks.0.ff.conv_point.weight')!;
      t.set('transformer_blocks.0.ff.conv_point.weight', HostTensor.float32([64, 160], w.toFloat32())); // a denoise-graph weight
    });
    await assert.rejects(SanaTransformer.load(dir, { threads: THREADS }), (e: Error) => {
      assert.match(e.message, /missing \(1\):\n\s+transformer_blocks\.1\.attn2\.to_k\.bias \[64\]/);
      assert.match(e.message, /unexpected \(1\):\n\s+transformer_blocks\.0\.attn1\.to_qkv\.weight/);
      assert.match(e.message, /mis-shaped \(1\):\n\s+transformer_blocks\.0\.ff\.conv_point\.weight: file has \[64,160\], model expects \[64,160,1,1\]/);
      return true;
    });
  });

  it('rejects an invalid config value naming the key, and keeps unknown keys', async () => {
    const dir = modifiedCheckpoint(fixture, (_, c) => {
      c.num_layers = 0;
    });
    await assert.rejects(SanaTransformer.load(dir, { threads: THREADS }), /config\.json: config key "num_layers" must be an integer >= 1 \(got 0\)/);
    const base = loadManifest(fixture).config!;
    assert.throws(() => parseSanaTransformerConfig({ ...base, qk_norm: 'layer_norm' }, 'c.json'), /config key "qk_norm"/);
    assert.throws(() => parseSanaTransformerConfig({ ...base, mlp_ratio: -2 }, 'c.json'), /config key "mlp_ratio" must be a positive number/);
    assert.throws(() => parseSanaTransformerConfig({ ...base, cross_attention_dim: 32 }, 'c.json'), /config key "cross_attention_dim"/);
    assert.throws(() => parseSanaTransformerConfig({ ...base, guidance_embeds: 'yes' }, 'c.json'), /config key "guidance_embeds" must be true or false/);
    const parsed = parseSanaTransformerConfig({ ...base, some_future_key: [1, 2] }, 'c.json');
    assert.deepEqual(parsed.raw.some_future_key, [1, 2]);
    assert.equal(parsed.interpolationScale, undefined);
    // diffusers defaults for keys the file leaves out
    const minimal = parseSanaTransformerConfig({}, 'c.json');
    assert.deepEqual(
      [minimal.numAttentionHeads, minimal.numLayers, minimal.crossAttentionHeadDim, minimal.captionChannels, minimal.normEps, minimal.timestepScale],
      [70, 20, 112, 2304, 1e-6, 1],
    );
  });

  it('loads a sharded checkpoint (index.json + shards) to the same result', async () => {
    const src = componentDir(fixture);
    const dir = tempDir();
    const tensors = readSafetensors(path.join(src, 'diffusion_pytorch_model.safetensors'));
    const names = [...tensors.keys()].sort();
    const shards = [names.slice(0, 20), names.slice(20)];
    const weightMap: Record<string, string> = {};
    shards.forEach((part, i) => {
      const file = `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(path.join(dir, file), new Map(part.map((n) => [n, tensors.get(n)!])));
      for (const n of part) weightMap[n] = file;
    });
    fs.writeFileSync(path.join(dir, 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    fs.copyFileSync(path.join(src, 'config.json'), path.join(dir, 'config.json'));
    const runner = await loadTransformerComponent(dir, { threads: THREADS });
    try {
      const out = await runner.run(inputs(fixture));
      assertClose(out.sample, fixtureTensor(fixture, 'outputs', 'sample'), manifestTolerance(fixture, 'sample'), 'sharded sample');
    } finally {
      await runner.release();
    }
  });

  it('runs the guidance-embedding (Sprint) layout: a zero guidance embedder reproduces the plain model', async () => {
    // Sprint keys: time_embed.timestep_embedder.* (no ".emb.") plus time_embed.guidance_embedder.*. With the guidance
    // MLP's last layer zero, e = timestep MLP(t) + 0, so the output must be the fixture's for any guidance value.
    const dir = modifiedCheckpoint(fixture, (t, c) => {
      c.guidance_embeds = true;
      for (const name of [...t.keys()]) {
        if (!name.startsWith('time_embed.emb.timestep_embedder.')) continue;
        t.set(name.replace('time_embed.emb.', 'time_embed.'), t.get(name)!);
        t.delete(name);
      }
      const d = 64;
      t.set('time_embed.guidance_embedder.linear_1.weight', HostTensor.float32([d, 256], Float32Array.from({ length: d * 256 }, (_, i) => Math.sin(i))));
      t.set('time_embed.guidance_embedder.linear_1.bias', HostTensor.float32([d], Float32Array.from({ length: d }, (_, i) => Math.cos(i))));
      t.set('time_embed.guidance_embedder.linear_2.weight', HostTensor.float32([d, d]));
      t.set('time_embed.guidance_embedder.linear_2.bias', HostTensor.float32([d]));
    });
    const runner = await loadTransformerComponent(dir, { threads: THREADS });
    try {
      assert.deepEqual([...runner.inputNames], ['hidden_states', 'encoder_hidden_states', 'encoder_attention_mask', 'timestep', 'guidance']);
      await assert.rejects(runner.run(inputs(fixture)), /missing input\(s\) guidance/);
      const out = await runner.run({ ...inputs(fixture), guidance: HostTensor.float32([2], [0.45, 0.45]) });
      assertClose(out.sample, fixtureTensor(fixture, 'outputs', 'sample'), manifestTolerance(fixture, 'sample'), 'guidance-layout sample');
    } finally {
      await runner.release();
    }
  });

  it('binds norm2 weight and bias when norm_elementwise_affine is set (identity values keep the output)', async () => {
    const dir = modifiedCheckpoint(fixture, (t, c) => {
      c.norm_elementwise_affine = true;
      for (const i of [0, 1]) {
        t.set(`transformer_blocks.${i}.norm2.weight`, HostTensor.float32([64], new Float32Array(64).fill(1)));
        t.set(`transformer_blocks.${i}.norm2.bias`, HostTensor.float32([64]));
      }
    });
    const runner = await loadTransformerComponent(dir, { threads: THREADS });
    try {
      const out = await runner.run(inputs(fixture));
      assertClose(out.sample, fixtureTensor(fixture, 'outputs', 'sample'), manifestTolerance(fixture, 'sample'), 'affine-norm2 sample');
    } finally {
      await runner.release();
    }
  });

  it('runs fp16 weights (diffusion_pytorch_model.fp16.safetensors) in fp32 close to the fp32 reference', async () => {
    const dir = modifiedCheckpoint(
      fixture,
      (t) => {
        for (const [name, v] of t) t.set(name, toHalf(v));
      },
      'diffusion_pytorch_model.fp16.safetensors',
    );
    const runner = await loadTransformerComponent(dir, { threads: THREADS });
    try {
      const out = await runner.run(inputs(fixture));
      const ref = fixtureTensor(fixture, 'outputs', 'sample');
      // Rounding every weight to fp16 (relative step 2^-11 ~ 4.9e-4) perturbs each product by ~1e-3 relative; through
      // two blocks the output moves by ~1e-3 of its scale. The bounds are 10x that, far below a real bug (O(1)).
      const maxRef = Math.max(...Array.from(ref.toFloat32(), Math.abs));
      const report = assertClose(out.sample, ref, { atol: 1e-2 * maxRef, rtol: 1e-2, rel_l2: 1e-2 }, 'fp16-weight sample');
      assert.ok(report.maxAbs > 0, 'fp16 weights must change the result a little (else they were not used)');
    } finally {
      await runner.release();
    }
  });
});

describe('SanaTransformer2DModel caption caching', () => {
  const fixture = 'sana_transformer_tiny_v2';

  it('drops all-padding caption positions without changing the result, and serves any batch size', async () => {
    const model = await SanaTransformer.load(componentDir(fixture), { threads: THREADS });
    try {
      const x = inputs(fixture);
      const [b, t, cc] = x.encoder_hidden_states.shape;
      const extra = 3;
      // Append 3 positions that are padding in both rows: the reference gives them weight exp(-10000) = 0.
      const caption = new Float32Array(b * (t + extra) * cc);
      const mask = new BigInt64Array(b * (t + extra));
      const src = x.encoder_hidden_states.toFloat32();
      const srcMask = x.encoder_attention_mask.data as BigInt64Array;
      for (let i = 0; i < b; i++) {
        caption.set(src.subarray(i * t * cc, (i + 1) * t * cc), i * (t + extra) * cc);
        for (let j = 0; j < extra * cc; j++) caption[(i * (t + extra) + t) * cc + j] = Math.sin(j + i);
        mask.set(srcMask.subarray(i * t, (i + 1) * t), i * (t + extra));
      }
      const padded = HostTensor.float32([b, t + extra, cc], caption);
      const paddedMask = HostTensor.int64([b, t + extra], mask);
      const ref = fixtureTensor(fixture, 'outputs', 'sample');
      const tol = manifestTolerance(fixture, 'sample');

      const trimmed = await model.encodeCaption(padded, paddedMask);
      assert.equal(trimmed.tokens, t, 'the all-padding tail is dropped');
      assertClose(await model.denoise(x.hidden_states, x.timestep, trimmed), ref, tol, 'trimmed caption');
      const full = await model.encodeCaption(padded, paddedMask, { trimPadding: false });
      assert.equal(full.tokens, t + extra);
      assertClose(await model.denoise(x.hidden_states, x.timestep, full), ref, tol, 'untrimmed caption');

      // The same compiled graphs with batch 1: row 1 alone gives row 1 of the reference.
      const row = (h: HostTensor, i: number) => {
        const per = elementCount(h.shape.slice(1));
        const data = h.dtype === 'int64' ? (h.data as BigInt64Array).slice(i * per, (i + 1) * per) : h.toFloat32().slice(i * per, (i + 1) * per);
        return new HostTensor(h.dtype, [1, ...h.shape.slice(1)], data as never);
      };
      const one = await model.encodeCaption(row(x.encoder_hidden_states, 1), row(x.encoder_attention_mask, 1));
      const sample1 = await model.denoise(row(x.hidden_states, 1), row(x.timestep, 1), one);
      assertClose(sample1, row(ref, 1), tol, 'batch-1 row 1');
    } finally {
      await model.release();
    }
  });

  it('rejects inputs of the wrong shape or dtype with a message naming them', async () => {
    const model = await SanaTransformer.load(componentDir(fixture), { threads: THREADS });
    try {
      const x = inputs(fixture);
      const caption = await model.encodeCaption(x.encoder_hidden_states, x.encoder_attention_mask);
      const odd = HostTensor.float32([2, 8, 7, 12]);
      await assert.rejects(model.denoise(odd, x.timestep, caption), /hidden_states must be float32 \[B, 8, H, W\] with H and W divisible by patch_size 2/);
      await assert.rejects(
        model.encodeCaption(x.encoder_hidden_states, HostTensor.float32([2, 6])),
        /encoder_attention_mask must be int64 \[2, 6\]/,
      );
      await assert.rejects(model.denoise(x.hidden_states, HostTensor.float32([3]), caption), /timestep must have shape \[2\]/);
    } finally {
      await model.release();
    }
  });
});
