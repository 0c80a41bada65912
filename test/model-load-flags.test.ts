// The model-loading flags every pipeline command shares (sana generate, serve, worker): each flag reaches the load
// options it names, and a bad value is a UsageError naming the flag. ref: src/cli/model-load-flags.ts

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../src/cli/errors.js';
import { modelLoadFromFlags } from '../src/cli/model-load-flags.js';

test('every flag reaches its load option', async () => {
  const o = await modelLoadFromFlags({
    'text-quantization': 'int4',
    'transformer-quantization': 'int8',
    'vae-tile-size': '256',
    threads: '1',
    device: 'cpu',
    lora: ['style.safetensors:0.5'],
    'lora-fuse': true,
  });
  assert.equal(o.textQuantization, 'int4');
  assert.equal(o.transformerQuantization, 'int8');
  assert.deepEqual(o.vaeTiling, { tileHeight: 256, tileWidth: 256, strideHeight: 224, strideWidth: 224 });
  assert.equal(o.threads, 1);
  assert.equal(o.device, 'cpu');
  assert.deepEqual(o.loras, [{ file: 'style.safetensors', scale: 0.5 }]);
  assert.equal(o.loraFuse, true);
  const defaults = await modelLoadFromFlags({});
  assert.equal(defaults.textQuantization, 'none');
  assert.equal(defaults.transformerQuantization, 'none');
  assert.equal(defaults.vaeTiling, undefined);
  assert.equal((await modelLoadFromFlags({ 'vae-tiling': true })).vaeTiling, true);
});

test('a bad value is a UsageError naming the flag', async () => {
  for (const [flags, message] of [
    [{ 'text-quantization': 'int3' }, /--text-quantization: expected none, int8 or int4, got "int3"/],
    [{ 'transformer-quantization': 'fp8' }, /--transformer-quantization: expected none or int8, got "fp8"/],
    [{ threads: 'many' }, /--threads/],
    [{ device: 'tpu' }, /--device/],
  ] as const) {
    await assert.rejects(modelLoadFromFlags(flags), (e: unknown) => e instanceof UsageError && message.test(e.message));
  }
});
