// A job's trip through Redis: a request with a 64-bit seed and image tensors comes back the same after JSON, and a
// malformed payload is refused as bad input naming what is wrong (the worker fails such a job without retrying).
// ref: docs/server.md "Scale-out"

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { RequestError, resolveRequest } from '../src/pipeline/request.js';
import { decodePayload, encodePayload } from '../src/server/job-payload.js';

test('a request survives JSON: 64-bit seed, start image and mask, PAG and Sprint fields', () => {
  const image = HostTensor.float32([1, 3, 2, 2], [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 0.25]);
  const mask = HostTensor.float32([1, 1, 2, 2], [1, 0, 0, 1]);
  const request = resolveRequest(
    {
      prompts: ['a red circle', 'a blue square'],
      negativePrompt: 'blurry',
      seed: 18446744073709551615n,
      steps: 7,
      image,
      mask,
      strength: 0.5,
      pagScale: 2,
      pagLayers: ['transformer_blocks\\.1'],
      intermediateTimesteps: null,
    },
    256,
  );
  const wire = JSON.parse(JSON.stringify(encodePayload(request, 'euler', true, 3)));
  const back = decodePayload(wire, 256);
  assert.equal(back.sampler, 'euler');
  assert.equal(back.preview, true);
  assert.equal(back.previewEvery, 3);
  assert.equal(back.request.seed, 18446744073709551615n);
  assert.deepEqual(back.request.prompts, ['a red circle', 'a blue square']);
  assert.equal(back.request.negativePrompt, 'blurry');
  assert.equal(back.request.steps, 7);
  assert.equal(back.request.strength, 0.5);
  assert.equal(back.request.pagScale, 2);
  assert.deepEqual(back.request.pagLayers, ['transformer_blocks\\.1']);
  assert.equal(back.request.intermediateTimesteps, null);
  assert.deepEqual(back.request.image!.shape, [1, 3, 2, 2]);
  assert.deepEqual([...back.request.image!.data], [...image.data]);
  assert.deepEqual([...back.request.mask!.data], [1, 0, 0, 1]);
});

test('malformed payloads are refused as bad input, naming the field', () => {
  const good = encodePayload(resolveRequest({ prompts: ['x'], seed: 1 }, 256), 'dpm', false, 0);
  const cases: Array<[unknown, RegExp]> = [
    [null, /not a sana-ts job/],
    [{ ...good, version: 2 }, /not a sana-ts job/],
    [{ ...good, preview: 'yes' }, /preview \(boolean\)/],
    [{ ...good, request: { ...good.request, seed: 1.5 } }, /seed must be a decimal string, got 1\.5/],
    [{ ...good, request: { ...good.request, steps: -2 } }, /steps must be a positive integer, got -2/],
    [{ ...good, request: { ...good.request, image: { shape: [1, 3, 2, 2], data: 'AAAA' } } }, /image has 3 bytes for shape \[1, 3, 2, 2\]/],
  ];
  for (const [payload, message] of cases) {
    assert.throws(() => decodePayload(payload, 256), (e: unknown) => e instanceof RequestError && message.test((e as Error).message), String(message));
  }
});
