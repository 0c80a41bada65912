// The pipeline's int8 text encoder runs the integer GEMM (per-channel int8 weights x per-token int8 activations,
// src/nn/int8-linear.ts), cached beside the text encoder; its image stays close to the float32 pipeline's.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadSanaPipeline, pipelineComponents } from '../src/pipeline/components.js';
import { Backend } from '../src/runtime/backend.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { fixturePath, fixtureTensor } from './helpers/fixtures.js';
import { e2eFixtureRequest } from './helpers/pipeline-parity.js';

/** A writable copy of the e2e fixture's model folder (the fixtures are read-only), so caches land beside it. */
function modelCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-text-int8-'));
  fs.cpSync(fixturePath('sana_pipeline_tiny_e2e', 'model'), dir, { recursive: true });
  const writable = (p: string): void => {
    fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o755 : 0o644);
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) writable(path.join(p, e));
  };
  writable(dir);
  return dir;
}

test("textQuantization 'int8': the integer-GEMM weights are cached beside the text encoder; the image stays within 5e-3 (mean) of the reference", async () => {
  const dir = modelCopy();
  try {
    const { pipeline } = await loadSanaPipeline(dir, { threads: 1, textQuantization: 'int8' });
    const result = await pipeline.run(e2eFixtureRequest());
    await pipeline.release();
    const cached = fs.readdirSync(path.join(dir, 'text_encoder', '.sana-ts-cache'));
    assert.ok(cached.some((f) => /^gemma2-int8-gemm-b32-.*\.safetensors$/.test(f)), `cache files: ${cached.join(', ')}`);
    const reference = fixtureTensor('sana_pipeline_tiny_e2e', 'outputs', 'image').toFloat32();
    const image = result.images.data;
    assert.equal(image.length, reference.length);
    let worst = 0;
    let sum = 0;
    for (let i = 0; i < image.length; i++) {
      const d = Math.abs(image[i] - reference[i]);
      worst = Math.max(worst, d);
      sum += d;
    }
    // images in [-1, 1]; measured: mean 1.0e-3, max 9.1e-3
    console.log(`int8 text: mean ${(sum / image.length).toExponential(2)}, max ${worst.toExponential(2)}`);
    assert.ok(sum / image.length < 5e-3 && worst < 0.05, `mean |int8 - reference| ${sum / image.length}, max ${worst}`);
    assert.ok(worst > 0, 'int8 text encoding changes the image a little (it is not the float32 path)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a one-shot int8 text encoder is loaded unpacked, a resident one prepacked; both encode to the same bits', async () => {
  const dir = modelCopy();
  try {
    const asked: (boolean | undefined)[] = [];
    const recording: Backend = {
      ...nodeBackend,
      createSession: (model, options) => {
        if (model.name === 'gemma2_text_encoder') asked.push(options?.prepack);
        return nodeBackend.createSession(model, options);
      },
    };
    const embeds: Float32Array[] = [];
    for (const keepResident of [false, true]) {
      const components = pipelineComponents(dir, { threads: 1, textQuantization: 'int8', keepResident, backend: recording });
      const encoder = await components.loadPromptEncoder();
      const { promptEmbeds } = await encoder.encode(['a red circle'], '', { maxSequenceLength: 300, withNegative: true });
      embeds.push(Float32Array.from(promptEmbeds.data as Float32Array));
      await encoder.release();
    }
    assert.deepEqual(asked, [false, undefined], 'one-shot: prepack false; resident: the default (prepacked)');
    assert.ok(embeds[0].length > 0);
    assert.deepEqual(embeds[0], embeds[1], 'integer GEMMs give the same bits packed or not');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
