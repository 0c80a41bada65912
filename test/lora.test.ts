// LoRA on the transformer: adapters in diffusers layout applied in the graph equal the model whose weights were
// merged independently here (W + s B A in float64); a fused load equals the unfused one; kohya files (lora_down /
// lora_up / alpha) mean the same; an adapter that matches no layer, or the wrong size, is an error naming it.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { SanaTransformer } from '../src/models/sana/transformer.js';
import { LoraSet, parseLoraArg } from '../src/nn/lora.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor } from './helpers/fixtures.js';
import { Rng } from './helpers/random.js';

const BASE = fixturePath('sana_transformer_tiny', 'component');
const RANK = 4;
/** Layers of every kind the graphs have: token-major Gemms, a 1x1 conv, channels-first projections, the caption side. */
const MODULES: Array<[string, number, number, number[]?]> = [
  ['transformer_blocks.0.attn1.to_q', 64, 64],
  ['transformer_blocks.1.attn2.to_k', 64, 64],
  ['transformer_blocks.0.ff.conv_inverted', 64, 320, [1, 1]],
  ['transformer_blocks.1.ff.conv_point', 160, 64, [1, 1]],
  ['caption_projection.linear_1', 32, 64],
  ['proj_out', 64, 32],
  ['patch_embed.proj', 32, 64, [1, 1]],
];

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sana-lora-'));
}

/** Random adapters: down [r, in(,1,1)], up [out, r(,1,1)]. */
function adapters(seed: number) {
  const rng = new Rng(seed);
  return MODULES.map(([module, inF, outF, conv]) => ({
    module,
    down: HostTensor.float32([RANK, inF, ...(conv ?? [])], rng.floats(RANK * inF, -0.3, 0.3)),
    up: HostTensor.float32([outF, RANK, ...(conv ?? [])], rng.floats(outF * RANK, -0.3, 0.3)),
  }));
}

function writeDiffusersLora(file: string, list: ReturnType<typeof adapters>): void {
  const t: Record<string, HostTensor> = {};
  for (const a of list) {
    t[`transformer.${a.module}.lora_A.weight`] = a.down;
    t[`transformer.${a.module}.lora_B.weight`] = a.up;
  }
  writeSafetensors(file, t);
}

/** The base folder with W + scale B A merged into each adapted weight, in float64. */
function mergedCopy(list: ReturnType<typeof adapters>, scale: number): string {
  const dir = path.join(tmpDir(), 'merged');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(BASE, 'config.json'), path.join(dir, 'config.json'));
  const weights = readSafetensors(path.join(BASE, 'diffusion_pytorch_model.safetensors'));
  for (const a of list) {
    const key = `${a.module}.weight`;
    const w = weights.get(key)!;
    const [outF, inF] = [a.up.shape[0], a.down.shape[1]];
    const merged = Float64Array.from(w.toFloat32());
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) {
        let s = 0;
        for (let k = 0; k < RANK; k++) s += a.up.data[o * RANK + k] * a.down.data[k * inF + i];
        merged[o * inF + i] += scale * s;
      }
    }
    weights.set(key, HostTensor.float32(w.shape, Float32Array.from(merged)));
  }
  writeSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), weights);
  return dir;
}

async function forward(dir: string, lora?: LoraSet): Promise<Float32Array> {
  const model = await SanaTransformer.load(dir, { threads: 1, lora });
  const inputs = (n: string) => fixtureTensor('sana_transformer_tiny', 'inputs', n);
  const out = await model.forward({
    hidden_states: inputs('hidden_states'),
    encoder_hidden_states: inputs('encoder_hidden_states'),
    encoder_attention_mask: inputs('encoder_attention_mask'),
    timestep: inputs('timestep'),
  });
  await model.release();
  return out.data as Float32Array;
}

test('LoRA in the graph equals independently merged weights; fused equals unfused; kohya files mean the same', async () => {
  const list = adapters(1);
  const file = path.join(tmpDir(), 'style.safetensors');
  writeDiffusersLora(file, list);
  const scale = 0.7;
  const base = await forward(BASE);
  const unfused = await forward(BASE, new LoraSet([{ file, scale }]));
  const merged = await forward(mergedCopy(list, scale));
  assert.ok(unfused.some((v, i) => Math.abs(v - base[i]) > 1e-3), 'the adapters change the output');
  assertClose(unfused, merged, { atol: 2e-5, rtol: 1e-4 }, 'graph LoRA vs merged weights');
  const fused = await forward(BASE, new LoraSet([{ file, scale }], true));
  assertClose(fused, unfused, { atol: 2e-5, rtol: 1e-4 }, 'fused vs unfused');

  // kohya: lora_unet_ + underscored module names, lora_down / lora_up, alpha = 2 on rank 4 -> strength 0.5
  const kohya: Record<string, HostTensor> = {};
  for (const a of list) {
    const name = `lora_unet_${a.module.replace(/\./g, '_')}`;
    kohya[`${name}.lora_down.weight`] = a.down;
    kohya[`${name}.lora_up.weight`] = a.up;
    kohya[`${name}.alpha`] = HostTensor.float32([], Float32Array.of(2));
  }
  const kohyaFile = path.join(tmpDir(), 'kohya.safetensors');
  writeSafetensors(kohyaFile, kohya);
  const viaKohya = await forward(BASE, new LoraSet([{ file: kohyaFile, scale: 1.4 }])); // 1.4 x 2 / 4 = 0.7
  assertClose(viaKohya, unfused, { atol: 1e-6, rtol: 1e-6 }, 'kohya vs diffusers layout');

  // two files add up: the same adapters at 0.3 and 0.4 are the one at 0.7
  const twice = await forward(BASE, new LoraSet([{ file, scale: 0.3 }, { file, scale: 0.4 }]));
  assertClose(twice, unfused, { atol: 2e-5, rtol: 1e-4 }, 'two LoRAs');
});

test('an adapter that matches no layer, or has the wrong size, is refused by name', async () => {
  const dir = tmpDir();
  const stray = path.join(dir, 'stray.safetensors');
  writeSafetensors(stray, {
    'transformer.transformer_blocks.7.attn1.to_q.lora_A.weight': HostTensor.float32([2, 64], new Float32Array(128)),
    'transformer.transformer_blocks.7.attn1.to_q.lora_B.weight': HostTensor.float32([64, 2], new Float32Array(128)),
  });
  await assert.rejects(SanaTransformer.load(BASE, { lora: new LoraSet([{ file: stray }]) }), /stray\.safetensors: 1 adapter\(s\) match no linear layer of SanaTransformer2DModel.*transformer_blocks\.7\.attn1\.to_q/);
  const wrong = path.join(dir, 'wrong.safetensors');
  writeSafetensors(wrong, {
    'transformer.transformer_blocks.0.attn1.to_q.lora_A.weight': HostTensor.float32([2, 48], new Float32Array(96)),
    'transformer.transformer_blocks.0.attn1.to_q.lora_B.weight': HostTensor.float32([64, 2], new Float32Array(128)),
  });
  await assert.rejects(SanaTransformer.load(BASE, { lora: new LoraSet([{ file: wrong }]) }), /transformer_blocks\.0\.attn1\.to_q maps 48 -> 64 features, but the layer is 64 -> 64/);
  const odd = path.join(dir, 'odd.safetensors');
  writeSafetensors(odd, { 'something.else': HostTensor.float32([1], new Float32Array(1)) });
  assert.throws(() => new LoraSet([{ file: odd }]), /"something\.else" is neither lora_A\/lora_B/);
  assert.throws(() => new LoraSet([{ file: path.join(dir, 'missing.safetensors') }]), /missing\.safetensors does not exist/);
  assert.deepEqual(parseLoraArg('style.safetensors:0.8'), { file: 'style.safetensors', scale: 0.8 });
  assert.deepEqual(parseLoraArg('/loras/a:b.safetensors'), { file: '/loras/a:b.safetensors' });
});
