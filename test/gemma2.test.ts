// Gemma-2 decoder stack against transformers 4.47 (eager attention) on the tiny fixtures, every hidden state.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { loadTextEncoderComponent } from '../src/models/gemma2/component.js';
import { defaultLayerTypes, parseGemma2Config } from '../src/models/gemma2/config.js';
import { loadGemma2 } from '../src/models/gemma2/loader.js';
import { ConfigReader } from '../src/io/config.js';
import { assertClose, compareArrays } from './helpers/compare.js';
import { Tolerance, fixturePath, fixtureTensor, loadManifest } from './helpers/fixtures.js';

const threads = 1;

async function checkFixture(fixture: string): Promise<void> {
  const manifest = loadManifest(fixture);
  const encoder = await loadGemma2(fixturePath(fixture, 'component'), { threads, outputHiddenStates: true });
  const ids = fixtureTensor(fixture, 'inputs', 'input_ids');
  const mask = fixtureTensor(fixture, 'inputs', 'attention_mask');
  const { all } = await encoder.encode(ids, mask);
  const call = manifest.calls![0];
  assert.ok(Object.keys(call.outputs).length >= 3, 'fixture lists hidden states');
  for (const [field, tensorName] of Object.entries(call.outputs)) {
    const tol = manifest.tolerance![tensorName] as Tolerance;
    assert.ok(all[field], `output ${field} is produced`);
    assertClose(all[field], fixtureTensor(fixture, 'outputs', tensorName), tol, `${fixture} ${field}`);
  }
  await encoder.release();
}

test('gemma2_tiny: every hidden state matches transformers (softcap 50, GQA 2:1, right padding)', async () => {
  await checkFixture('gemma2_tiny');
});

test('gemma2_tiny_window: sliding window 4 on even layers and softcap 2 match transformers', async () => {
  await checkFixture('gemma2_tiny_window');
});

test('gemma2_tiny_window: the sliding window matters (all-full attention breaks parity)', async () => {
  const fixture = 'gemma2_tiny_window';
  const dir = variantFolder(fixture, (w) => w, (c) => {
    c.layer_types = ['full_attention', 'full_attention', 'full_attention'];
  });
  const encoder = await loadGemma2(dir, { threads });
  const got = (await encoder.encode(fixtureTensor(fixture, 'inputs', 'input_ids'), fixtureTensor(fixture, 'inputs', 'attention_mask'))).lastHiddenState;
  const r = compareArrays(got.data, fixtureTensor(fixture, 'outputs', 'last_hidden_state').toFloat32(), { atol: 0 });
  assert.ok(r.maxAbs > 1e-2, `no window must change the result (max |diff| ${r.maxAbs})`);
  await encoder.release();
  fs.rmSync(dir, { recursive: true });
});

test('softcap switch: with large attention logits, capping changes the result; off = uncapped', async () => {
  // q/k weights scaled 20x make logits far beyond the cap of 2, where tanh saturates
  const fixture = 'gemma2_tiny_window';
  const dir = variantFolder(fixture, (w) => {
    for (const [k, v] of w) {
      if (/self_attn\.(q|k)_proj/.test(k)) w.set(k, HostTensor.float32(v.shape, v.toFloat32().map((x) => x * 20)));
    }
    return w;
  });
  const ids = fixtureTensor(fixture, 'inputs', 'input_ids');
  const mask = fixtureTensor(fixture, 'inputs', 'attention_mask');
  const capped = await loadGemma2(dir, { threads });
  const uncapped = await loadGemma2(dir, { threads, softcap: false });
  const a = (await capped.encode(ids, mask)).lastHiddenState;
  const b = (await uncapped.encode(ids, mask)).lastHiddenState;
  const r = compareArrays(a.data, b.data, { atol: 0 });
  assert.ok(r.maxAbs > 0.1, `softcap on/off differ by only ${r.maxAbs}`);
  await capped.release();
  await uncapped.release();
  fs.rmSync(dir, { recursive: true });
});

test('layer types: transformers 4.47 slides on even layers; layer_types overrides', () => {
  assert.deepEqual(defaultLayerTypes(3), ['sliding_attention', 'full_attention', 'sliding_attention']);
  const cfg = parseGemma2Config(new ConfigReader('x/config.json', { num_hidden_layers: 2, layer_types: ['full_attention', 'full_attention'] }));
  assert.deepEqual(cfg.layerTypes, ['full_attention', 'full_attention']);
  assert.throws(
    () => parseGemma2Config(new ConfigReader('x/config.json', { num_hidden_layers: 2, layer_types: ['full_attention'] })),
    /x\/config.json: config key "layer_types"/,
  );
});

test('config errors name the file and key', () => {
  assert.throws(() => parseGemma2Config(new ConfigReader('te/config.json', { hidden_size: 'big' })), /te\/config.json: config key "hidden_size"/);
  assert.throws(
    () => parseGemma2Config(new ConfigReader('te/config.json', { num_attention_heads: 8, num_key_value_heads: 3 })),
    /config key "num_key_value_heads" \(3\) must divide "num_attention_heads" \(8\)/,
  );
  assert.throws(() => parseGemma2Config(new ConfigReader('te/config.json', { model_type: 'llama' })), /config key "model_type"/);
  assert.throws(() => parseGemma2Config(new ConfigReader('te/config.json', { hidden_activation: 'relu' })), /config key "hidden_activation"/);
});

/** A copy of a fixture's component folder with its weights transformed (renamed keys, dropped or extra tensors). */
function variantFolder(fixture: string, edit: (w: Map<string, HostTensor>) => Map<string, HostTensor>, configEdit?: (c: Record<string, unknown>) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gemma2-'));
  const config = JSON.parse(fs.readFileSync(fixturePath(fixture, 'component', 'config.json'), 'utf8'));
  configEdit?.(config);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(path.join(dir, 'model.safetensors'), edit(readSafetensors(fixturePath(fixture, 'component', 'model.safetensors'))));
  return dir;
}

test('Gemma2ForCausalLM layout: "model." prefix accepted, lm_head.weight ignored, same result', async () => {
  const fixture = 'gemma2_tiny';
  const dir = variantFolder(fixture, (w) => {
    const out = new Map<string, HostTensor>();
    for (const [k, v] of w) out.set(`model.${k}`, v);
    out.set('lm_head.weight', w.get('embed_tokens.weight')!);
    return out;
  });
  const runner = await loadTextEncoderComponent(dir, { threads });
  const out = await runner.run({
    input_ids: fixtureTensor(fixture, 'inputs', 'input_ids'),
    attention_mask: fixtureTensor(fixture, 'inputs', 'attention_mask'),
  });
  const tol = loadManifest(fixture).tolerance!.last_hidden_state as Tolerance;
  assertClose(out.last_hidden_state, fixtureTensor(fixture, 'outputs', 'last_hidden_state'), tol, 'prefixed checkpoint');
  await runner.release();
  fs.rmSync(dir, { recursive: true });
});

test('bf16 checkpoint: gathered embedding rows and cast weights stay close to the fp32 reference', async () => {
  const fixture = 'gemma2_tiny';
  const dir = variantFolder(fixture, (w) => {
    const out = new Map<string, HostTensor>();
    for (const [k, v] of w) {
      const f = v.toFloat32();
      const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
      out.set(k, new HostTensor('bfloat16', v.shape, Uint16Array.from(bits, (b) => (b + 0x7fff + ((b >>> 16) & 1)) >>> 16)));
    }
    return out;
  });
  for (const noConstantFolding of [false, true]) {
    const encoder = await loadGemma2(dir, { threads, noConstantFolding });
    const got = (await encoder.encode(fixtureTensor(fixture, 'inputs', 'input_ids'), fixtureTensor(fixture, 'inputs', 'attention_mask'))).lastHiddenState;
    // bf16 keeps 8 mantissa bits: weights move by <= 2^-9 relative; the output moves by about that much
    const r = compareArrays(got.data, fixtureTensor(fixture, 'outputs', 'last_hidden_state').toFloat32(), { atol: 0 });
    assert.ok(r.relL2 < 2e-2 && r.relL2 > 1e-5, `bf16 relative L2 ${r.relL2} (noConstantFolding ${noConstantFolding})`);
    await encoder.release();
  }
  fs.rmSync(dir, { recursive: true });
});

test('strict loading: one error names the missing, mis-shaped and unexpected keys', async () => {
  const dir = variantFolder('gemma2_tiny', (w) => {
    w.delete('layers.1.mlp.up_proj.weight');
    w.set('layers.0.self_attn.q_proj.weight', HostTensor.float32([64, 63]));
    w.set('layers.0.self_attn.extra.weight', HostTensor.float32([2]));
    return w;
  });
  await assert.rejects(loadGemma2(dir, { threads }), (e: Error) => {
    assert.match(e.message, /missing \(1\):\s+layers\.1\.mlp\.up_proj\.weight \[128,64\]/);
    assert.match(e.message, /mis-shaped \(1\):\s+layers\.0\.self_attn\.q_proj\.weight: file has \[64,63\], model expects \[64,64\]/);
    assert.match(e.message, /unexpected \(1\):\s+layers\.0\.self_attn\.extra\.weight/);
    return true;
  });
  fs.rmSync(dir, { recursive: true });
});

test('a config that disagrees with the weights is reported with the weights it affects', async () => {
  const dir = variantFolder('gemma2_tiny', (w) => w, (c) => {
    c.intermediate_size = 96;
  });
  await assert.rejects(loadGemma2(dir, { threads }), /mlp\.gate_proj\.weight: file has \[128,64\], model expects \[96,64\]/);
  fs.rmSync(dir, { recursive: true });
});

test('bad inputs are refused with the argument named', async () => {
  const encoder = await loadGemma2(fixturePath('gemma2_tiny', 'component'), { threads });
  await assert.rejects(encoder.encode(HostTensor.int64([1, 2], [1, 2]), HostTensor.int64([1, 3], [1, 1, 1])), /differ in shape/);
  await assert.rejects(encoder.encode(HostTensor.int64([1, 2], [1, 999]), HostTensor.int64([1, 2], [1, 1])), /token id 999 is outside the vocabulary \[0, 256\)/);
  await assert.rejects(encoder.encode(HostTensor.float32([1, 2]), HostTensor.int64([1, 2], [1, 1])), /input_ids must be int64/);
  await encoder.release();
});

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

// Bounds measured on these fixtures (int8 ~0.9997-0.9999, int4 ~0.959-0.977 cosine to the fp32 reference), with
// a margin; random tiny weights are harder on int4 than trained ones.
const QUANT_BOUNDS = { int8: 0.999, int4: 0.94 } as const;

for (const fixture of ['gemma2_tiny', 'gemma2_tiny_window']) {
  for (const quantization of ['int8', 'int4'] as const) {
    test(`${fixture} ${quantization}: last hidden state cosine to transformers >= ${QUANT_BOUNDS[quantization]}`, async () => {
      // the cache goes to a temporary folder: never write next to the shared fixtures
      const weightCacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gemma2-qcache-'));
      const encoder = await loadGemma2(fixturePath(fixture, 'component'), { threads, quantization, weightCacheDir });
      const got = (await encoder.encode(fixtureTensor(fixture, 'inputs', 'input_ids'), fixtureTensor(fixture, 'inputs', 'attention_mask'))).lastHiddenState;
      const expected = fixtureTensor(fixture, 'outputs', 'last_hidden_state').toFloat32();
      const c = cosine(got.data, expected);
      assert.ok(c >= QUANT_BOUNDS[quantization] && c < 1 - 1e-7, `${quantization} cosine ${c}`);
      await encoder.release();
      fs.rmSync(weightCacheDir, { recursive: true });
    });
  }
}

for (const fixture of ['gemma2_tiny', 'gemma2_tiny_window']) {
  test(`${fixture} int8 through the integer GEMM (per-channel weights, per-token activations): cosine >= 0.999, cached once`, async (t) => {
    const weightCacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gemma2-qcache-'));
    const ids = fixtureTensor(fixture, 'inputs', 'input_ids');
    const mask = fixtureTensor(fixture, 'inputs', 'attention_mask');
    const expected = fixtureTensor(fixture, 'outputs', 'last_hidden_state').toFloat32();
    const first = await loadGemma2(fixturePath(fixture, 'component'), { threads, quantization: 'int8', integerGemm: true, weightCacheDir });
    assert.equal(first.weightCache?.created, true);
    assert.match(first.weightCache!.file, /gemma2-int8-gemm-b32-/);
    const got = (await first.encode(ids, mask)).lastHiddenState;
    await first.release();
    const c = cosine(got.data, expected);
    t.diagnostic(`${fixture} int8 integer GEMM: cosine to transformers ${c.toFixed(6)}`);
    assert.ok(c >= 0.999 && c < 1 - 1e-7, `cosine ${c}`);
    const again = await loadGemma2(fixturePath(fixture, 'component'), { threads, quantization: 'int8', integerGemm: true, weightCacheDir });
    assert.equal(again.weightCache?.created, false);
    assert.deepEqual([...(await again.encode(ids, mask)).lastHiddenState.data], [...got.data]);
    await again.release();
    const memory = await loadGemma2(fixturePath(fixture, 'component'), { threads, quantization: 'int8', integerGemm: true, weightCacheDir: null });
    assert.deepEqual([...(await memory.encode(ids, mask)).lastHiddenState.data], [...got.data]);
    await memory.release();
    fs.rmSync(weightCacheDir, { recursive: true });
  });
}

test('integerGemm needs int8', async () => {
  await assert.rejects(loadGemma2(fixturePath('gemma2_tiny', 'component'), { threads, quantization: 'int4', integerGemm: true, weightCacheDir: null }), /option integerGemm needs quantization 'int8'/);
});

test('quantized loading is strict too', async () => {
  const dir = variantFolder('gemma2_tiny', (w) => {
    w.delete('layers.0.mlp.down_proj.weight');
    w.delete('norm.weight');
    return w;
  });
  await assert.rejects(loadGemma2(dir, { threads, quantization: 'int4' }), /missing \(2\):[\s\S]*layers\.0\.mlp\.down_proj\.weight[\s\S]*norm\.weight/);
  fs.rmSync(dir, { recursive: true });
});

test('sharded checkpoint (model.safetensors.index.json) loads like the single file', async () => {
  const fixture = 'gemma2_tiny';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gemma2-shards-'));
  fs.copyFileSync(fixturePath(fixture, 'component', 'config.json'), path.join(dir, 'config.json'));
  const all = readSafetensors(fixturePath(fixture, 'component', 'model.safetensors'));
  const shards = [new Map<string, HostTensor>(), new Map<string, HostTensor>()];
  const weightMap: Record<string, string> = {};
  [...all.keys()].forEach((k, i) => {
    shards[i % 2].set(k, all.get(k)!);
    weightMap[k] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
  });
  shards.forEach((s, i) => writeSafetensors(path.join(dir, `model-0000${i + 1}-of-00002.safetensors`), s));
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const encoder = await loadGemma2(dir, { threads });
  const got = (await encoder.encode(fixtureTensor(fixture, 'inputs', 'input_ids'), fixtureTensor(fixture, 'inputs', 'attention_mask'))).lastHiddenState;
  const tol = loadManifest(fixture).tolerance!.last_hidden_state as Tolerance;
  assertClose(got, fixtureTensor(fixture, 'outputs', 'last_hidden_state'), tol, 'sharded');
  await encoder.release();
  fs.rmSync(dir, { recursive: true });
});
