// The /local route (src/server/routes/local-page.ts) over a stand-in build folder: files with their types and the
// cross-origin-isolation headers wasm threads need, the redirect that keeps the URL's settings, 404s for what is not
// there (and for paths that try to leave the folder), and a message when the page was never built.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { FastifyInstance } from 'fastify';
import { registerLocalPageRoutes } from '../src/server/routes/local-page.js';

describe('the /local route', () => {
  let dir: string;
  let app: FastifyInstance;
  let unbuilt: FastifyInstance;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-local-'));
    fs.mkdirSync(path.join(dir, 'site', 'ort'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'site', 'index.html'), '<!doctype html><title>local</title>');
    fs.writeFileSync(path.join(dir, 'site', 'ort', 'x.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d]));
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'outside the page folder');
    app = Fastify();
    registerLocalPageRoutes(app, path.join(dir, 'site'));
    unbuilt = Fastify();
    registerLocalPageRoutes(unbuilt, path.join(dir, 'never-built'));
  });

  after(async () => {
    await app.close();
    await unbuilt.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('serves the page cross-origin isolated, and wasm as application/wasm', async () => {
    const page = await app.inject('/local/');
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.match(page.headers['content-security-policy'] as string, /'wasm-unsafe-eval'/);
    assert.match(page.body, /<title>local<\/title>/);
    const wasm = await app.inject('/local/ort/x.wasm');
    assert.equal(wasm.statusCode, 200);
    assert.equal(wasm.headers['content-type'], 'application/wasm');
  });

  test('/local redirects to /local/ with the settings kept', async () => {
    const r = await app.inject('/local?prompt=a%20cat&seed=3&run=1');
    assert.equal(r.statusCode, 302);
    assert.equal(r.headers.location, '/local/?prompt=a%20cat&seed=3&run=1');
  });

  test('404 for missing files and for paths out of the folder', async () => {
    for (const url of ['/local/nope.js', '/local/../secret.txt', '/local/%2e%2e/secret.txt', '/local/ort/..%2f..%2fsecret.txt', '/local/.hidden']) {
      const r = await app.inject(url);
      assert.ok(r.statusCode === 404 || r.statusCode === 400, `${url}: ${r.statusCode}`);
      assert.doesNotMatch(r.body, /outside the page folder/, url);
    }
  });

  test('an unbuilt page says how to build it', async () => {
    const r = await unbuilt.inject('/local/');
    assert.equal(r.statusCode, 404);
    assert.match(r.body, /npm run build:web/);
  });
});
