// LoRA fine-tuning (`sana train --lora-rank R`): the adapters' gradients follow from the full model's gradient,
// which the PyTorch parity test pins (W' = W + s B A gives dL/dA = s B^T G and dL/dB = s G A^T with G = dL/dW');
// through the CLI, a resumed run ends exactly where an uninterrupted one does, the saved file is in the diffusers
// layout with alpha / r folded in, `sana generate --lora` draws with it, and the base transformer is never written.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { readSafetensors } from '../src/io/safetensors.js';
import { WeightStore, findWeights } from '../src/io/weights.js';
import { readSanaTransformerConfig } from '../src/models/sana/config.js';
import { TrainableLora, loraKeys } from '../src/nn/lora-trainable.js';
import { TorchGenerator, fillRandn } from '../src/random/torch-rng.js';
import { FLOW_INPUTS, buildFlowMatchingGraph } from '../src/train/flow-matching-objective.js';
import { TrainSession, readParameters } from '../src/train/train-graph.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor } from './helpers/fixtures.js';

const CLI = path.resolve('dist/src/cli/main.js');
const DEFAULT_MODEL = path.resolve('models/default');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-lora-train-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** C[m, n] = sum_k A[m, k] B[k, n] in float64 (row-major; transposes by strides). */
function matmul(a: Float32Array, aStride: [number, number], b: Float32Array, bStride: [number, number], m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * aStride[0] + t * aStride[1]] * b[t * bStride[0] + j * bStride[1]];
      c[i * n + j] = s;
    }
  }
  return c;
}

function sana(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('LoRA training', () => {
  it('adapter gradients equal s B^T G and s G A^T of the full-weight gradient, in every linear-layer layout', async () => {
    const fixture = 'sana_train_step_tiny';
    const dir = fixturePath(fixture, 'component');
    const config = readSanaTransformerConfig(dir);
    const store = WeightStore.open(findWeights(dir, ['diffusion_pytorch_model']));
    const input = (n: string) => fixtureTensor(fixture, 'inputs', n);
    const [b, , h, w] = input('x0').shape;
    const shape = { batch: b, height: h, width: w, tokens: input('encoder_hidden_states').shape[1] };
    const feeds = {
      [FLOW_INPUTS.x0]: input('x0'),
      [FLOW_INPUTS.noise]: input('noise'),
      [FLOW_INPUTS.sigmas]: input('sigmas'),
      [FLOW_INPUTS.caption]: input('encoder_hidden_states'),
      [FLOW_INPUTS.mask]: input('encoder_attention_mask'),
    };
    // token-major layers (attention, feed-forward 1x1 convs, caption projection), channels-in (patch_embed.proj)
    const targets = ['to_q', 'to_k', 'to_v', 'to_out.0', 'conv_inverted', 'conv_point', 'patch_embed.proj', 'caption_projection.linear_1'];
    const rank = 3;
    const lora = new TrainableLora({ rank, alpha: 6, targets });
    const loraGraph = buildFlowMatchingGraph(config, store, shape, { lora });
    assert.equal(lora.modules().length, 2 * 10 + 2, 'every targeted layer of both blocks got an adapter');
    // random A and B (B = 0 would make dL/dA vanish and hide mistakes)
    const g = new TorchGenerator(11);
    const loraValues = new Map<string, Float32Array>();
    for (const [key, s] of lora.shapes()) {
      const v = fillRandn(new Float32Array(s[0] * s[1]), g);
      loraValues.set(key, v.map((x) => x * 0.05));
    }
    const full = buildFlowMatchingGraph(config, store, shape);
    const merged = readParameters(store, full.params);
    for (const { module, inF, outF } of lora.modules()) {
      const keys = loraKeys(module);
      const delta = matmul(loraValues.get(keys.up)!, [rank, 1], loraValues.get(keys.down)!, [inF, 1], outF, rank, inF); // B A [out, in]
      const weight = merged.get(`${module}.weight`)!;
      assert.equal(weight.length, outF * inF, module);
      for (let i = 0; i < weight.length; i++) weight[i] += lora.scale * delta[i];
    }
    const loraSession = await TrainSession.create(loraGraph, loraValues, { threads: 1 });
    const fullSession = await TrainSession.create(full, merged, { threads: 1 });
    try {
      const viaLora = await loraSession.run(feeds);
      const viaFull = await fullSession.run(feeds);
      assertClose([viaLora.loss], [viaFull.loss], { atol: 0, rtol: 1e-5 }, 'loss of W + s B A in the graph vs merged');
      for (const { module, inF, outF } of lora.modules()) {
        const keys = loraKeys(module);
        const gw = viaFull.grads.get(`${module}.weight`)!; // [out, in]
        const a = loraValues.get(keys.down)!; // [r, in]
        const bUp = loraValues.get(keys.up)!; // [out, r]
        const expectDown = matmul(bUp, [1, rank], gw, [inF, 1], rank, outF, inF).map((v) => v * lora.scale); // s B^T G
        const expectUp = matmul(gw, [inF, 1], a, [1, inF], outF, inF, rank).map((v) => v * lora.scale); // s G A^T
        assertClose(viaLora.grads.get(keys.down)!, expectDown, { atol: 1e-7, rtol: 1e-3, rel_l2: 1e-4 }, `d loss / d ${keys.down}`);
        assertClose(viaLora.grads.get(keys.up)!, expectUp, { atol: 1e-7, rtol: 1e-3, rel_l2: 1e-4 }, `d loss / d ${keys.up}`);
      }
      assert.equal(viaLora.grads.size, 2 * lora.modules().length, 'only the adapters are trained');
    } finally {
      await loraSession.release();
      await fullSession.release();
    }
  });

  it('sana train --lora-rank: exact resume, a diffusers-layout file with alpha / r folded in, usable by sana generate', () => {
    const data = path.join(root, 'data');
    assert.equal(sana(['make-shapes', '--out', data, '--count', '6', '--size', '256']).status, 0);
    const transformerFile = path.join(DEFAULT_MODEL, 'transformer', 'diffusion_pytorch_model.safetensors');
    const before = sha(transformerFile);
    const train = (out: string, extra: string[]) =>
      sana(['train', '--data', data, '--base', DEFAULT_MODEL, '--out', out, '--lora-rank', '4', '--lora-alpha', '8', '--steps', '4', '--batch', '3',
        '--lr', '2e-3', '--warmup', '1', '--schedule', 'constant', '--checkpoint-every', '2', '--ema', '0', '--threads', '1', '--quiet', ...extra]);
    const straight = path.join(root, 'straight');
    const resumed = path.join(root, 'resumed');
    const r1 = train(straight, []);
    assert.equal(r1.status, 0, r1.stderr);
    // interrupted after step 2: a run told to stop there, then resumed
    fs.mkdirSync(resumed);
    const r2 = train(resumed, ['--steps', '2']);
    assert.equal(r2.status, 0, r2.stderr);
    const r3 = train(resumed, ['--resume']);
    assert.equal(r3.status, 0, r3.stderr);
    assert.equal(sha(transformerFile), before, 'the base transformer is not written');

    const file = path.join(straight, 'checkpoint-latest', 'pytorch_lora_weights.safetensors');
    const adapters = readSafetensors(file);
    const state = readSafetensors(path.join(straight, 'checkpoint-latest', 'training_state.safetensors'));
    // the default model: 6 blocks x (attn1, attn2) x (to_q, to_k, to_v)
    assert.equal(adapters.size, 6 * 2 * 3 * 2);
    for (let block = 0; block < 6; block++) {
      for (const attn of ['attn1', 'attn2']) {
        for (const proj of ['to_q', 'to_k', 'to_v']) {
          const keys = loraKeys(`transformer_blocks.${block}.${attn}.${proj}`);
          const down = adapters.get(keys.down);
          const up = adapters.get(keys.up);
          assert.ok(down && up, `${keys.down} and ${keys.up} in the file`);
          assert.equal(down.shape[0], 4);
          assert.equal(up.shape[1], 4);
          const trainedUp = state.get(`param.${keys.up}`)!.toFloat32();
          assert.ok(trainedUp.some((v) => v !== 0), `${keys.up} moved from its zero start`);
          assertClose(up.toFloat32(), Array.from(trainedUp, (v) => v * 2), { atol: 0, rtol: 1e-6 }, `${keys.up} = (alpha / r) B`);
          assert.deepEqual(down.toFloat32(), state.get(`param.${keys.down}`)!.toFloat32(), keys.down);
        }
      }
    }
    const resumedState = readSafetensors(path.join(resumed, 'checkpoint-latest', 'training_state.safetensors'));
    assert.deepEqual([...resumedState.keys()].sort(), [...state.keys()].sort());
    for (const [k, t] of state) assert.deepEqual(resumedState.get(k)!.data, t.data, `${k} after resuming`);
    assert.equal(sha(path.join(resumed, 'checkpoint-latest', 'pytorch_lora_weights.safetensors')), sha(file));

    const png = (name: string, extra: string[]) => {
      const out = path.join(root, name);
      execFileSync(process.execPath, [CLI, 'generate', 'a red circle', '--model', DEFAULT_MODEL, '--seed', '3', '--steps', '4', '-o', out, '--quiet', ...extra]);
      return PNG.sync.read(fs.readFileSync(out)).data;
    };
    const plain = png('plain.png', []);
    const adapted = png('adapted.png', ['--lora', file]);
    const fused = png('fused.png', ['--lora', file, '--lora-fuse']);
    let changed = 0;
    for (let i = 0; i < plain.length; i++) if (plain[i] !== adapted[i]) changed++;
    assert.ok(changed > plain.length / 100, `the trained adapter changes the image (${changed} of ${plain.length} bytes differ)`);
    let worst = 0;
    for (let i = 0; i < fused.length; i++) worst = Math.max(worst, Math.abs(fused[i] - adapted[i]));
    assert.ok(worst <= 2, `fused and unfused adapters draw the same image (max byte difference ${worst})`);
  });

  it('bad LoRA training arguments are refused naming the flag', () => {
    const data = path.join(root, 'data');
    const base = ['train', '--data', data, '--base', DEFAULT_MODEL, '--out', path.join(root, 'bad'), '--steps', '1', '--quiet'];
    const cases: [string[], RegExp][] = [
      [['--lora-rank', '0'], /--lora-rank: expected a positive integer/],
      [['--lora-alpha', '4'], /--lora-alpha and --lora-targets need --lora-rank/],
      [['--lora-rank', '2', '--lora-alpha', '0'], /--lora-alpha: expected a positive number/],
      [['--lora-rank', '2', '--lora-targets', 'to_q,to_qq'], /--lora-targets: to_qq match no linear layer/],
      [['--lora-rank', '2', '--transformer-config', path.join(DEFAULT_MODEL, 'transformer', 'config.json')], /--lora-rank fine-tunes the base transformer/],
    ];
    fs.mkdirSync(data, { recursive: true });
    if (!fs.existsSync(path.join(data, 'captions.jsonl'))) assert.equal(sana(['make-shapes', '--out', data, '--count', '2', '--size', '256']).status, 0);
    for (const [args, message] of cases) {
      const r = sana([...base, ...args]);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});
