// The HTTP API over a real socket, on the bundled default model: every endpoint, the event stream, cancellation of
// running and waiting jobs, the full-queue 429, validation errors naming the field, retention, the output folder,
// authentication on and off, CORS, and refusing to expose an unauthenticated server.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodePng, encodePng, readTextChunks } from '../src/io/png.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { toRgbImages } from '../src/pipeline/postprocess.js';
import { SanaServer, startSanaServer } from '../src/server/server.js';
import { api, readEvents, waitForJob } from './helpers/server-client.js';

const PROMPT = 'a red circle left of a blue square on a yellow background';

describe('server API (no key)', () => {
  let server: SanaServer;
  let base: string;
  let outputDir: string;
  before(async () => {
    outputDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-serve-out-'));
    server = await startSanaServer({ port: 0, queueSize: 2, keepJobs: 50, outputDir, previewEvery: 5, bodyLimit: 65_536 });
    base = server.url;
  });
  after(() => server.close());

  test('healthz and the model list', async () => {
    assert.deepEqual((await api(base, 'GET', '/healthz')).body, { status: 'ok' });
    const r = await api(base, 'GET', '/api/models');
    assert.equal(r.status, 200);
    const [m] = r.body.models;
    assert.equal(r.body.models.length, 1);
    assert.equal(m.id, 'default');
    assert.equal(m.default, true);
    assert.equal(m.width, 256);
    assert.equal(m.height, 256);
    assert.equal(m.sampler, 'dpm');
    assert.ok(m.sizes.some((s: any) => s.width === 256 && s.height === 256 && s.ratio === 1));
    assert.ok(m.sizes.every((s: any) => s.width % 32 === 0 && s.height % 32 === 0));
    const keys = m.sizes.map((s: any) => `${s.width}x${s.height}`);
    assert.equal(new Set(keys).size, keys.length, 'each size once');
    assert.deepEqual(m.sizes[0], { width: 512, height: 128, ratio: 0.25 }, 'the widest bin first');
    // 448 x 160 is the bin of 0.32 and 0.33: listed once, under the one nearer 160 / 448
    assert.deepEqual(m.sizes.filter((s: any) => s.width === 448 && s.height === 160), [{ width: 448, height: 160, ratio: 0.33 }]);
    assert.deepEqual(m.queue, { running: 0, queued: 0, capacity: 2 });
    assert.deepEqual(r.body.limits, { maxSize: 2048, maxSteps: 100, maxImages: 4, maxPromptLength: 4000, maxPrompts: 4 });
  });

  test('a job: 202, its events with previews, its JSON, and PNGs equal to the library pipeline for the seed', async () => {
    // A job ahead of it keeps it waiting until its watcher is connected, so the stream shows every event.
    const blocker = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 100, preview: false });
    const submit = await api(base, 'POST', '/api/generate', { prompt: [PROMPT, 'a green square'], seed: 42, steps: 12, numImages: 1 });
    assert.equal(submit.status, 202);
    assert.equal(submit.body.status, 'queued');
    assert.equal(submit.body.position, 1);
    const { id } = submit.body;
    setTimeout(() => void api(base, 'DELETE', `/api/jobs/${blocker.body.id}`), 100);
    assert.match(id, /^j_[A-Za-z0-9_-]+$/);
    assert.equal(submit.headers.get('location'), `/api/jobs/${id}`);
    assert.equal(submit.body.events, `/api/jobs/${id}/events`);

    const events = await readEvents(`${base}/api/jobs/${id}/events`);
    const names = events.map((e) => e.event);
    assert.deepEqual(names.slice(0, 4), ['queued', 'started', 'stage', 'stage']);
    assert.deepEqual(events[0].data, { position: 1 });
    assert.equal(names.at(-1), 'done');
    assert.equal(events.at(-1)!.data.id, id);
    assert.equal(events.at(-1)!.data.status, 'done');
    assert.deepEqual(
      events.filter((e) => e.event === 'stage').map((e) => e.data.stage),
      ['encode', 'denoise', 'decode'],
    );
    const steps = events.filter((e) => e.event === 'step');
    assert.equal(steps.at(-1)!.data.step, 12);
    assert.ok(steps.every((e) => e.data.total === 12));
    const previews = steps.filter((e) => e.data.preview);
    assert.deepEqual(previews.map((e) => e.data.step), [5, 10]);
    const preview = decodePng(Buffer.from(previews[0].data.preview.replace(/^data:image\/png;base64,/, ''), 'base64'));
    assert.deepEqual([preview.width, preview.height], [256, 256]);

    const job = (await api(base, 'GET', `/api/jobs/${id}`)).body;
    assert.equal(job.status, 'done');
    assert.equal(job.position, null);
    assert.deepEqual(job.parameters, {
      prompt: [PROMPT, 'a green square'],
      negative: '',
      steps: 12,
      guidance: 4.5,
      seed: '42',
      width: 256,
      height: 256,
      noBinning: false,
      sampler: 'dpm',
      flowShift: null,
      numImages: 1,
      maxSequenceLength: 300,
      image: false,
      strength: null,
      mask: false,
      controlImage: false,
      controlScale: null,
      pagScale: 0,
      pagLayers: [],
      pagAdaptiveScale: 0,
      maxTimesteps: null,
      intermediateTimesteps: null,
    });
    assert.deepEqual(job.progress, { stage: 'decode', step: 12, total: 12 });
    assert.equal(job.images.length, 2);
    for (const k of ['queuedSeconds', 'encodeSeconds', 'denoiseSeconds', 'decodeSeconds', 'totalSeconds']) {
      assert.ok(job.timings[k] >= 0, k);
    }
    assert.ok(Date.parse(job.finishedAt) >= Date.parse(job.startedAt));
    assert.equal(job.images[1].prompt, 'a green square');

    // The same request through the library, as `sana generate --seed 42 --steps 12 PROMPT "a green square"`.
    const { pipeline } = await loadSanaPipeline();
    const expected = toRgbImages((await pipeline.run({ prompts: [PROMPT, 'a green square'], seed: 42, steps: 12 })).images);
    await pipeline.release();
    for (const k of [0, 1]) {
      const img = await api(base, 'GET', `/api/jobs/${id}/images/${k}`);
      assert.equal(img.status, 200);
      assert.equal(img.headers.get('content-type'), 'image/png');
      assert.match(img.headers.get('content-disposition')!, new RegExp(`filename="sana-42-${k}\\.png"`));
      const png = decodePng(img.body);
      assert.deepEqual([png.width, png.height], [256, 256]);
      assert.ok(Buffer.from(png.rgb).equals(Buffer.from(expected[k].rgb)), `image ${k} differs from the library's for seed 42`);
      const text = readTextChunks(img.body);
      assert.equal(text.seed, '42');
      assert.equal(text.steps, '12');
      assert.equal(text.prompt, k === 0 ? PROMPT : 'a green square');
    }
  });

  test('image-to-image and inpainting over the API: base64 PNG inputs, the kept pixels preserved', async () => {
    const first = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 4, seed: 3 });
    await waitForJob(base, first.body.id);
    const start = (await api(base, 'GET', `/api/jobs/${first.body.id}/images/0`)).body as Buffer;
    const maskPng = encodePng({ width: 256, height: 256, rgb: new Uint8Array(256 * 256 * 3).map((_, i) => ((i / 3) % 256 < 128 ? 255 : 0)) });
    const submit = await api(base, 'POST', '/api/generate', {
      prompt: 'a green diamond',
      steps: 4,
      seed: 4,
      image: start.toString('base64'),
      mask: `data:image/png;base64,${maskPng.toString('base64')}`,
    });
    assert.equal(submit.status, 202, JSON.stringify(submit.body));
    const job = await waitForJob(base, submit.body.id);
    assert.equal(job.status, 'done', job.error);
    assert.equal(job.parameters.image, true);
    assert.equal(job.parameters.mask, true);
    assert.equal(job.parameters.strength, 1);
    const out = decodePng((await api(base, 'GET', `/api/jobs/${job.id}/images/0`)).body);
    const original = decodePng(start);
    for (let p = 0; p < 256 * 256; p++) {
      if (p % 256 >= 128) for (let c = 0; c < 3; c++) assert.equal(out.rgb[p * 3 + c], original.rgb[p * 3 + c], `kept pixel ${p}`);
    }
    const bad = await api(base, 'POST', '/api/generate', { prompt: PROMPT, image: 'aGVsbG8gd29ybGQ=' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /body\/image is not a readable PNG image/);
    const noImage = await api(base, 'POST', '/api/generate', { prompt: PROMPT, strength: 0.5 });
    assert.equal(noImage.status, 400);
    assert.match(noImage.body.error.message, /strength needs a start image/);
  });

  test('--output-dir gets each image, written atomically under the job id', async () => {
    const submit = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 2, numImages: 2, seed: '7' });
    const job = await waitForJob(base, submit.body.id);
    assert.equal(job.status, 'done');
    const files = fs.readdirSync(outputDir);
    assert.ok(files.includes(`${job.id}-0.png`) && files.includes(`${job.id}-1.png`), files.join(', '));
    assert.ok(!files.some((f) => f.endsWith('.tmp')), 'a temporary file was left behind');
    const served = await api(base, 'GET', `/api/jobs/${job.id}/images/1`);
    assert.ok(fs.readFileSync(path.join(outputDir, `${job.id}-1.png`)).equals(served.body));
  });

  test('cancelling a running job stops it at the next step', async () => {
    const submit = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 100, preview: false });
    const { id } = submit.body;
    let cancelled: any;
    const events = await readEvents(`${base}/api/jobs/${id}/events`, {}, async (e) => {
      if (e.event === 'step' && e.data.step === 3) cancelled = await api(base, 'DELETE', `/api/jobs/${id}`);
    });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'cancelled');
    assert.equal(events.at(-1)!.event, 'cancelled');
    const lastStep = events.filter((e) => e.event === 'step').at(-1)!.data.step;
    assert.ok(lastStep >= 3 && lastStep <= 5, `stopped after step ${lastStep}`);
    const job = (await api(base, 'GET', `/api/jobs/${id}`)).body;
    assert.equal(job.status, 'cancelled');
    assert.deepEqual(job.images, []);
    assert.equal((await api(base, 'GET', `/api/jobs/${id}/images/0`)).status, 404);
    // A finished job cannot be cancelled again.
    const again = await api(base, 'DELETE', `/api/jobs/${id}`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.type, 'conflict_error');
  });

  test('a full queue answers 429 with Retry-After; a waiting job is cancelled at once and the line moves up', async () => {
    const running = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 100, preview: false });
    const second = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 100, preview: false });
    const third = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 100, preview: false });
    assert.equal(running.status, 202);
    assert.equal(second.body.position, 1);
    assert.equal(third.body.position, 2);
    const full = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 2 });
    assert.equal(full.status, 429);
    assert.equal(full.body.error.type, 'rate_limit_error');
    assert.match(full.body.error.message, /queue of model "default" is full \(2 jobs waiting\)/);
    assert.ok(Number(full.headers.get('retry-after')) >= 1);
    assert.deepEqual((await api(base, 'GET', '/api/models')).body.models[0].queue, { running: 1, queued: 2, capacity: 2 });

    // The third watches its position; cancelling the second moves it to 1.
    const thirdEvents: any[] = [];
    const watching = readEvents(`${base}/api/jobs/${third.body.id}/events`, {}, (e) => void thirdEvents.push(e));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const c2 = await api(base, 'DELETE', `/api/jobs/${second.body.id}`);
    assert.equal(c2.body.status, 'cancelled');
    assert.equal((await api(base, 'GET', `/api/jobs/${third.body.id}`)).body.position, 1);
    await api(base, 'DELETE', `/api/jobs/${third.body.id}`);
    await api(base, 'DELETE', `/api/jobs/${running.body.id}`);
    await watching;
    assert.deepEqual(
      thirdEvents.map((e) => [e.event, e.data.position]),
      [['queued', 2], ['queued', 1], ['cancelled', undefined]],
    );
  });

  test('validation errors are 400s that name the field', async () => {
    const cases: Array<[unknown, string | null, RegExp]> = [
      [{ prompt: PROMPT, stpes: 3 }, 'stpes', /body\/stpes: unknown field/],
      [{}, 'prompt', /body\/prompt is required/],
      [{ prompt: '' }, 'prompt', /body\/prompt/],
      [{ prompt: 5 }, 'prompt', /body\/prompt must be string or must be array/],
      [{ prompt: PROMPT, steps: 0 }, 'steps', /body\/steps must be >= 1/],
      [{ prompt: PROMPT, steps: 101 }, 'steps', /body\/steps must be <= 100/],
      [{ prompt: PROMPT, steps: 2.5 }, 'steps', /body\/steps must be integer/],
      [{ prompt: PROMPT, width: 16 }, 'width', /body\/width must be >= 32/],
      [{ prompt: PROMPT, height: 4096 }, 'height', /body\/height must be <= 2048/],
      [{ prompt: PROMPT, numImages: 5 }, 'numImages', /body\/numImages must be <= 4/],
      [{ prompt: [PROMPT, PROMPT, PROMPT], numImages: 2 }, 'numImages', /3 prompts x 2 images = 6 images; this server makes at most 4/],
      [{ prompt: PROMPT, sampler: 'ddim' }, 'sampler', /body\/sampler must be one of "dpm", "euler"/],
      [{ prompt: PROMPT, seed: -1 }, 'seed', /body\/seed/],
      [{ prompt: PROMPT, seed: '18446744073709551616' }, 'seed', /below 2\^64/],
      [{ prompt: PROMPT, guidance: 'high' }, 'guidance', /body\/guidance must be number/],
      [{ prompt: PROMPT, noBinning: true, width: 100 }, null, /width must be a multiple of 32 when resolution binning is off/],
      [{ prompt: 'x'.repeat(4001) }, 'prompt', /body\/prompt/],
    ];
    for (const [body, param, message] of cases) {
      const r = await api(base, 'POST', '/api/generate', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.type, 'invalid_request_error');
      assert.equal(r.body.error.param, param, JSON.stringify(body));
      assert.match(r.body.error.message, message, JSON.stringify(body));
    }
    const badJson = await api(base, 'POST', '/api/generate', '{"prompt": "a', { 'content-type': 'application/json' });
    assert.equal(badJson.status, 400);
    assert.match(badJson.body.error.message, /not valid JSON/);
    const text = await api(base, 'POST', '/api/generate', 'prompt=a', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(text.status, 415);
    assert.match(text.body.error.message, /application\/json/);
    const huge = await api(base, 'POST', '/api/generate', { prompt: 'x'.repeat(70_000) });
    assert.equal(huge.status, 413);
    const unknownModel = await api(base, 'POST', '/api/generate', { prompt: PROMPT, model: 'sdxl' });
    assert.equal(unknownModel.status, 404);
    assert.equal(unknownModel.body.error.param, 'model');
    assert.match(unknownModel.body.error.message, /unknown model "sdxl"; this server has "default"/);
  });

  test('unknown jobs, images and routes are 404s; malformed ids are 400s', async () => {
    const missing = await api(base, 'GET', '/api/jobs/j_doesnotexist');
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /no job j_doesnotexist/);
    assert.equal((await api(base, 'GET', '/api/jobs/j_doesnotexist/events')).status, 404);
    assert.equal((await api(base, 'DELETE', '/api/jobs/j_doesnotexist')).status, 404);
    assert.equal((await api(base, 'GET', '/api/jobs/..%2F..%2Fetc%2Fpasswd')).status, 400);
    assert.equal((await api(base, 'GET', '/api/jobs/j_x/images/..%2Fa')).status, 400);
    const route = await api(base, 'GET', '/api/nothing');
    assert.equal(route.status, 404);
    assert.match(route.body.error.message, /no route GET \/api\/nothing/);
    const done = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 1 });
    await waitForJob(base, done.body.id);
    const k = await api(base, 'GET', `/api/jobs/${done.body.id}/images/1`);
    assert.equal(k.status, 404);
    assert.match(k.body.error.message, /has images 0\.\.0, not 1/);
  });

  test('the page and its assets, with a content security policy; no CORS headers without --cors', async () => {
    const page = await fetch(`${base}/`, { headers: { origin: 'http://elsewhere.test' } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.equal(page.headers.get('access-control-allow-origin'), null);
    assert.match(await page.text(), /\/assets\/page\.js/);
    for (const [asset, type] of [['/assets/page.js', /javascript/], ['/assets/page.css', /text\/css/]] as const) {
      const r = await fetch(base + asset);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type')!, type);
    }
    assert.equal((await fetch(`${base}/assets/../package.json`)).status, 404);
    const models = await fetch(`${base}/api/models`, { headers: { origin: 'http://elsewhere.test' } });
    assert.equal(models.headers.get('access-control-allow-origin'), null);
  });
});

describe('finished jobs are kept for a bounded count', () => {
  test('with --keep-jobs 1 the older of two finished jobs is gone', async () => {
    const server = await startSanaServer({ port: 0, keepJobs: 1 });
    try {
      const a = await api(server.url, 'POST', '/api/generate', { prompt: PROMPT, steps: 1 });
      await waitForJob(server.url, a.body.id);
      const b = await api(server.url, 'POST', '/api/generate', { prompt: PROMPT, steps: 1 });
      await waitForJob(server.url, b.body.id);
      assert.equal((await api(server.url, 'GET', `/api/jobs/${b.body.id}`)).status, 200);
      const gone = await api(server.url, 'GET', `/api/jobs/${a.body.id}`);
      assert.equal(gone.status, 404);
      assert.match(gone.body.error.message, /no longer kept/);
    } finally {
      await server.close();
    }
  });
});

describe('server API with a key and CORS', () => {
  let server: SanaServer;
  const key = 'test-key-0123456789';
  before(async () => {
    server = await startSanaServer({ port: 0, host: '0.0.0.0', apiKey: key, cors: 'http://app.example.test' });
  });
  after(() => server.close());

  test('every API route needs the bearer key; health and the page do not', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    for (const [method, route] of [['GET', '/api/models'], ['GET', '/v1/models'], ['POST', '/api/generate'], ['GET', '/api/jobs/j_x'], ['POST', '/v1/images/generations']]) {
      const none = await api(base, method, route, method === 'POST' ? { prompt: PROMPT } : undefined);
      assert.equal(none.status, 401, `${method} ${route}`);
      assert.equal(none.body.error.type, 'authentication_error');
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      const wrong = await api(base, method, route, method === 'POST' ? { prompt: PROMPT } : undefined, { authorization: 'Bearer nope' });
      assert.equal(wrong.status, 401);
      assert.match(wrong.body.error.message, /wrong API key/);
    }
    const auth = { authorization: `Bearer ${key}` };
    assert.equal((await api(base, 'GET', '/api/models', undefined, auth)).status, 200);
    const submit = await api(base, 'POST', '/api/generate', { prompt: PROMPT, steps: 1 }, auth);
    assert.equal(submit.status, 202);
    const events = await readEvents(`${base}/api/jobs/${submit.body.id}/events`, auth);
    assert.equal(events.at(-1)!.event, 'done');
    assert.equal((await api(base, 'GET', `/api/jobs/${submit.body.id}/images/0`, undefined, auth)).status, 200);
    assert.equal((await api(base, 'GET', `/api/jobs/${submit.body.id}/images/0`)).status, 401);
    assert.equal((await api(base, 'GET', '/healthz')).status, 200);
    assert.equal((await fetch(`${base}/`)).status, 200);
  });

  test('CORS headers for the allowed origin only, and preflight without a key', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const ok = await fetch(`${base}/api/models`, { headers: { origin: 'http://app.example.test', authorization: `Bearer ${key}` } });
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://app.example.test');
    const other = await fetch(`${base}/api/models`, { headers: { origin: 'http://evil.test', authorization: `Bearer ${key}` } });
    assert.notEqual(other.headers.get('access-control-allow-origin'), 'http://evil.test');
    const preflight = await fetch(`${base}/api/generate`, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://app.example.test');
  });
});

test('listening beyond loopback without an API key is refused with a clear message', async () => {
  await assert.rejects(startSanaServer({ port: 0, host: '0.0.0.0' }), /refusing to listen on 0\.0\.0\.0 without an API key.*--api-key KEY \(or set SANA_API_KEY\)/);
});
