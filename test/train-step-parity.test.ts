// Training parity with PyTorch: one and two steps of SANA's flow-matching objective (sana_train_step_tiny) and one
// step of the DC-AE reconstruction objective (dcae_train_step_tiny): the loss, the prediction, every parameter's
// gradient, the global gradient norm, and every parameter after AdamW (with clipping where the fixture clips),
// each within the manifest's per-tensor tolerance.

import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { WeightStore, findWeights } from '../src/io/weights.js';
import { readDcaeConfig } from '../src/models/dcae/config.js';
import { readSanaTransformerConfig } from '../src/models/sana/config.js';
import { buildDcaeReconstructionGraph, RECON_INPUTS } from '../src/train/dcae-objective.js';
import { FLOW_INPUTS, PREDICTION_OUTPUT, buildFlowMatchingGraph } from '../src/train/flow-matching-objective.js';
import { AdamW, clipGradNorm } from '../src/train/optimizer.js';
import { TrainSession, readParameters } from '../src/train/train-graph.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest } from './helpers/fixtures.js';

interface TrainManifest {
  train: { lr: number; betas: [number, number]; eps: number; weight_decay: number; max_norm: number | null };
  parameter_order: string[];
  tolerance: Record<string, { atol: number; rtol: number; rel_l2?: number }>;
  tolerance_by_file: Record<string, Record<string, { atol: number; rtol: number; rel_l2?: number }>>;
}

function manifest(fixture: string): TrainManifest {
  return loadManifest(fixture) as unknown as TrainManifest;
}

function checkFile(fixture: string, file: string, actual: ReadonlyMap<string, Float32Array>): void {
  const m = manifest(fixture);
  const expected = readSafetensors(fixturePath(fixture, file));
  assert.equal(expected.size, m.parameter_order.length, `${file}: one tensor per parameter`);
  for (const name of m.parameter_order) {
    const a = actual.get(name);
    assert.ok(a, `${file}: we have no tensor ${name}`);
    assertClose(a, expected.get(name)!.toFloat32(), m.tolerance_by_file[file][name], `${fixture} ${file} ${name}`);
  }
}

function checkOutput(fixture: string, name: string, actual: HostTensor | number): void {
  const tol = manifest(fixture).tolerance[name];
  const expected = fixtureTensor(fixture, 'outputs', name);
  const values = typeof actual === 'number' ? [actual] : actual.toFloat32();
  assertClose(values, expected.toFloat32(), tol, `${fixture} ${name}`);
}

async function step(fixture: string, session: TrainSession, optimizer: AdamW, feeds: Record<string, HostTensor>, suffix: string, extra: string[]) {
  const m = manifest(fixture);
  const out = await session.run(feeds, extra);
  checkOutput(fixture, `loss${suffix}`, out.loss);
  const ordered = m.parameter_order.map((n) => out.grads.get(n)!);
  return { out, ordered, m };
}

/** The DC-AE train-step fixture's model config, weights and input image batch. */
function dcaeFixture(fixture: string) {
  const dir = fixturePath(fixture, 'component');
  return {
    config: readDcaeConfig(path.join(dir, 'config.json')),
    store: WeightStore.open(findWeights(dir, ['diffusion_pytorch_model'])),
    image: fixtureTensor(fixture, 'inputs', 'image'),
  };
}

describe('training parity with PyTorch', () => {
  it('sana_train_step_tiny: flow-matching loss, gradients, clipping and two AdamW steps', async () => {
    const fixture = 'sana_train_step_tiny';
    const dir = fixturePath(fixture, 'component');
    const config = readSanaTransformerConfig(dir);
    const store = WeightStore.open(findWeights(dir, ['diffusion_pytorch_model']));
    const input = (n: string) => fixtureTensor(fixture, 'inputs', n);
    const [b, , h, w] = input('x0').shape;
    const tokens = input('encoder_hidden_states').shape[1];
    const trainable = buildFlowMatchingGraph(config, store, { batch: b, height: h, width: w, tokens });
    const session = await TrainSession.create(trainable, readParameters(store, trainable.params), { threads: 1 });
    const m = manifest(fixture);
    assert.deepEqual(
      [...trainable.params.map((p) => p.key)].sort(),
      [...m.parameter_order].sort(),
      'the training graph binds exactly the parameters PyTorch trains',
    );
    const optimizer = new AdamW({ betas: m.train.betas, eps: m.train.eps, weightDecay: m.train.weight_decay });
    try {
      for (const [k, suffix] of [[1, ''], [2, '_2']] as const) {
        const feeds = {
          [FLOW_INPUTS.x0]: input(`x0${suffix}`),
          [FLOW_INPUTS.noise]: input(`noise${suffix}`),
          [FLOW_INPUTS.sigmas]: input(`sigmas${suffix}`),
          [FLOW_INPUTS.caption]: input('encoder_hidden_states'),
          [FLOW_INPUTS.mask]: input('encoder_attention_mask'),
        };
        const { out, ordered } = await step(fixture, session, optimizer, feeds, suffix, [PREDICTION_OUTPUT]);
        checkOutput(fixture, `prediction${suffix}`, out.extra[PREDICTION_OUTPUT]);
        if (k === 1) checkFile(fixture, 'grads.safetensors', out.grads);
        const clip = clipGradNorm(ordered, m.train.max_norm);
        checkOutput(fixture, `grad_norm${suffix}`, clip.totalNorm);
        assert.ok(clip.coefficient < 1, 'the fixture clips');
        optimizer.update(session.values, out.grads, m.train.lr);
        checkFile(fixture, k === 1 ? 'params_after.safetensors' : 'params_after_2.safetensors', session.values);
      }
    } finally {
      await session.release();
    }
  });

  it('dcae_train_step_tiny: L1 + L2 reconstruction loss through encoder and decoder, gradients, one AdamW step', async () => {
    const fixture = 'dcae_train_step_tiny';
    const { config, store, image } = dcaeFixture(fixture);
    const [b, , h, w] = image.shape;
    const trainable = buildDcaeReconstructionGraph(config, store, { batch: b, height: h, width: w });
    const session = await TrainSession.create(trainable, readParameters(store, trainable.params), { threads: 1 });
    const m = manifest(fixture);
    assert.deepEqual([...trainable.params.map((p) => p.key)].sort(), [...m.parameter_order].sort());
    const optimizer = new AdamW({ betas: m.train.betas, eps: m.train.eps, weightDecay: m.train.weight_decay });
    try {
      const { out, ordered } = await step(fixture, session, optimizer, { [RECON_INPUTS.image]: image }, '', ['recon', 'latent']);
      checkOutput(fixture, 'recon', out.extra.recon);
      checkOutput(fixture, 'latent', out.extra.latent);
      checkFile(fixture, 'grads.safetensors', out.grads);
      const clip = clipGradNorm(ordered, m.train.max_norm);
      assert.equal(clip.coefficient, 1);
      checkOutput(fixture, 'grad_norm', clip.totalNorm);
      optimizer.update(session.values, out.grads, m.train.lr);
      checkFile(fixture, 'params_after.safetensors', session.values);
    } finally {
      await session.release();
    }
  });

  it('dcae_train_step_tiny, encoder frozen: the decoder gradients are PyTorch\'s; the edge term adds mean |dx|, |dy| of the error', async () => {
    const fixture = 'dcae_train_step_tiny';
    const { config, store, image } = dcaeFixture(fixture);
    const [b, c, h, w] = image.shape;
    const m = manifest(fixture);
    const expectedGrads = readSafetensors(fixturePath(fixture, 'grads.safetensors'));
    // 1. Decoder only, no edge term: the same loss, and exactly the fixture's decoder gradients.
    const frozen = buildDcaeReconstructionGraph(config, store, { batch: b, height: h, width: w }, { trainable: 'decoder' });
    const decoderKeys = m.parameter_order.filter((k) => k.startsWith('decoder.'));
    assert.deepEqual(frozen.params.map((p) => p.key).sort(), [...decoderKeys].sort());
    assert.ok(decoderKeys.length > 0 && decoderKeys.length < m.parameter_order.length);
    let session = await TrainSession.create(frozen, readParameters(store, frozen.params), { threads: 1 });
    try {
      const out = await session.run({ [RECON_INPUTS.image]: image });
      checkOutput(fixture, 'loss', out.loss);
      for (const k of decoderKeys) assertClose(out.grads.get(k)!, expectedGrads.get(k)!.toFloat32(), m.tolerance_by_file['grads.safetensors'][k], `frozen encoder: grad ${k}`);
    } finally {
      await session.release();
    }
    // 2. With the edge term: the loss is L1 + L2 + 0.5 (mean |dx e| + mean |dy e|) of e = recon - image, computed here
    //    from the graph's reconstruction; and a small step against the gradient lowers it by about |g| * step.
    const edgeWeight = 0.5;
    const edged = buildDcaeReconstructionGraph(config, store, { batch: b, height: h, width: w }, { trainable: 'decoder', edgeWeight });
    session = await TrainSession.create(edged, readParameters(store, edged.params), { threads: 1 });
    try {
      const out = await session.run({ [RECON_INPUTS.image]: image }, ['recon']);
      const recon = out.extra.recon.toFloat32();
      const x = image.toFloat32();
      const e = recon.map((v, i) => v - x[i]);
      let l1 = 0;
      let l2 = 0;
      for (const v of e) {
        l1 += Math.abs(v);
        l2 += v * v;
      }
      let dx = 0;
      let dy = 0;
      const at = (n: number, ch: number, y: number, xx: number) => e[((n * c + ch) * h + y) * w + xx];
      for (let n = 0; n < b; n++) {
        for (let ch = 0; ch < c; ch++) {
          for (let y = 0; y < h; y++) for (let xx = 1; xx < w; xx++) dx += Math.abs(at(n, ch, y, xx) - at(n, ch, y, xx - 1));
          for (let y = 1; y < h; y++) for (let xx = 0; xx < w; xx++) dy += Math.abs(at(n, ch, y, xx) - at(n, ch, y - 1, xx));
        }
      }
      const expected = l1 / e.length + l2 / e.length + edgeWeight * (dx / (b * c * h * (w - 1)) + dy / (b * c * (h - 1) * w));
      assert.ok(Math.abs(out.loss - expected) < 1e-5 * expected, `edge loss ${out.loss} vs ${expected} computed from the reconstruction`);
      const plain = await (async () => {
        const s2 = await TrainSession.create(frozen, readParameters(store, frozen.params), { threads: 1 });
        try {
          return (await s2.run({ [RECON_INPUTS.image]: image })).loss;
        } finally {
          await s2.release();
        }
      })();
      assert.ok(out.loss > plain * 1.01, `the edge term adds to the loss (${out.loss} vs ${plain})`);
      let norm2 = 0;
      for (const g of out.grads.values()) for (const v of g) norm2 += v * v;
      const stepSize = 1e-4 / Math.sqrt(norm2);
      for (const [k, v] of session.values) {
        const g = out.grads.get(k)!;
        for (let i = 0; i < v.length; i++) v[i] -= stepSize * g[i];
      }
      const moved = await session.run({ [RECON_INPUTS.image]: image });
      const predicted = stepSize * norm2; // first-order decrease
      const actual = out.loss - moved.loss;
      assert.ok(Math.abs(actual - predicted) < 0.1 * predicted, `loss decrease ${actual} vs first-order ${predicted}`);
    } finally {
      await session.release();
    }
  });
});
