// The official `openai` npm client against the server, unchanged: images.generate gives decodable PNGs of the
// requested size (as base64 or as URLs), models.list lists the models, and our 400s arrive as the client's
// BadRequestError with our message.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { decodePng, readTextChunks } from '../src/io/png.js';
import { SanaServer, startSanaServer } from '../src/server/server.js';

describe('OpenAI client', () => {
  let server: SanaServer;
  let client: OpenAI;
  before(async () => {
    server = await startSanaServer({ port: 0, apiKey: 'sk-test' });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
  });
  after(() => server.close());

  test('images.generate: n PNGs of the requested size as b64_json, the seed extension honoured', async () => {
    const params = { prompt: 'a purple triangle', n: 2, size: '256x256', response_format: 'b64_json', seed: 11 } as const;
    const res = await client.images.generate(params as OpenAI.Images.ImageGenerateParamsNonStreaming);
    assert.ok(res.created > 1_700_000_000);
    assert.equal(res.data!.length, 2);
    for (const d of res.data!) {
      const bytes = Buffer.from(d.b64_json!, 'base64');
      const png = decodePng(bytes);
      assert.deepEqual([png.width, png.height], [256, 256]);
      assert.equal(readTextChunks(bytes).seed, '11');
      assert.equal(readTextChunks(bytes).prompt, 'a purple triangle');
    }
    // Same seed, same images.
    const again = await client.images.generate(params as OpenAI.Images.ImageGenerateParamsNonStreaming);
    assert.equal(again.data![0].b64_json, res.data![0].b64_json);
  });

  test('a non-square size is honoured (generated at the nearest bin, resized back)', async () => {
    const res = await client.images.generate({ prompt: 'a green circle', size: '320x192' as '256x256' });
    const png = decodePng(Buffer.from(res.data![0].b64_json!, 'base64'));
    assert.deepEqual([png.width, png.height], [320, 192]);
  });

  test('response_format url points at a PNG the key can fetch', async () => {
    const res = await client.images.generate({ prompt: 'a white square', response_format: 'url' });
    const url = res.data![0].url!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/api\/jobs\/j_[A-Za-z0-9_-]+\/images\/0$/);
    const img = await fetch(url, { headers: { authorization: 'Bearer sk-test' } });
    assert.equal(img.status, 200);
    const png = decodePng(Buffer.from(await img.arrayBuffer()));
    assert.deepEqual([png.width, png.height], [256, 256]);
  });

  test('models.list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['default']);
  });

  test('errors arrive as the client error classes with the server message', async () => {
    await assert.rejects(client.images.generate({ prompt: 'a red circle', n: 9 }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.match(e.message, /body\/n/);
      return true;
    });
    await assert.rejects(client.images.generate({ prompt: 'a red circle', size: '1x1' as '256x256' }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.match(e.message, /body\/size must be "auto" or "WxH" with each side from 32 to 2048/);
      return true;
    });
    await assert.rejects(client.images.generate({ prompt: 'a red circle', model: 'dall-e-3' }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.match(e.message, /unknown model "dall-e-3"/);
      return true;
    });
    const wrongKey = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(wrongKey.images.generate({ prompt: 'a red circle' }), OpenAI.AuthenticationError);
  });
});
