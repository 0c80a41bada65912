// Property-based fuzzing (fast-check, fixed seed, printed) of request validation: the library's resolveRequest
// (what the CLI and the server share) with values of every type, and the server's /api/generate through Fastify's
// real validation (app.inject on a server started as users start it). The oracle is written here from the
// documented rules (README, docs/server.md), not taken from the code: an input the rules accept must be accepted
// with its values unchanged, an input they refuse must be refused with our error naming a field at fault, and
// nothing may crash or answer 500.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { GenerateRequest, RequestError, resolveRequest } from '../src/pipeline/request.js';
import { SanaServer, startSanaServer } from '../src/server/server.js';
import * as os from 'node:os';
import { FUZZ_SEED, assertOwnError, counts, report, tally } from './helpers/fuzz.js';

const started = Date.now();
after(() => console.log(`${report()}\n(${((Date.now() - started) / 1000).toFixed(1)} s)`));
const RUNS = { request: 3000, server: 1500, openai: 1500 };

// ---------------------------------------------------------------------------------------------------------------
// resolveRequest

const DEFAULT_SIZE = 256;
const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

/** The limits as docs/limits.md states them (not read from src/limits.ts, so a changed limit fails here). */
const DOC = { promptChars: 131072, prompts: 64, imagesPerPrompt: 64, images: 64, steps: 1000, minSequence: 2, maxSequence: 4096 };
/** docs/limits.md: the pixel buffers of a call, images x W x H x 40 bytes, may take at most half the memory. */
const fitsMemory = (r: Record<string, unknown>) => {
  const n = (Array.isArray(r.prompts) ? r.prompts.length : 1) * (isInt(r.numImagesPerPrompt, 1) ? (r.numImagesPerPrompt as number) : 1);
  const side = (v: unknown) => (isInt(v, 32, 8192) ? (v as number) : DEFAULT_SIZE);
  return n * side(r.width) * side(r.height) * 40 <= os.totalmem() / 2;
};
const imagesOk = (r: Record<string, unknown>) =>
  !isInt(r.numImagesPerPrompt, 1) || !Array.isArray(r.prompts) || r.prompts.length * (r.numImagesPerPrompt as number) <= DOC.images;

/** What each field may be (README "Commands", docs/limits.md and src/pipeline/request.ts's documented interface), and its name in messages. */
const RULES: Record<string, { ok: (v: unknown, req: Record<string, unknown>) => boolean; named: RegExp }> = {
  prompts: {
    ok: (v) => Array.isArray(v) && v.length > 0 && v.length <= DOC.prompts && v.every((p) => typeof p === 'string' && p.length <= DOC.promptChars),
    named: /prompt/,
  },
  negativePrompt: { ok: (v) => typeof v === 'string' && v.length <= DOC.promptChars, named: /negative/ },
  width: { ok: (v, r) => isInt(v, 32, 8192) && (r.binning !== false || (v as number) % 32 === 0) && fitsMemory(r), named: /width|image\(s\) of/ },
  height: { ok: (v, r) => isInt(v, 32, 8192) && (r.binning !== false || (v as number) % 32 === 0) && fitsMemory(r), named: /height|image\(s\) of/ },
  steps: { ok: (v) => isInt(v, 1, DOC.steps), named: /steps/ },
  guidanceScale: { ok: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0, named: /guidance/ },
  seed: {
    ok: (v) => (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'bigint' && v >= -(2n ** 63n) && v < 2n ** 64n),
    named: /seed/,
  },
  numImagesPerPrompt: { ok: (v, r) => isInt(v, 1, DOC.imagesPerPrompt) && imagesOk(r) && fitsMemory(r), named: /images per prompt|image\(s\) of/ },
  binning: { ok: (v) => typeof v === 'boolean', named: /binning/ },
  maxSequenceLength: { ok: (v) => isInt(v, DOC.minSequence, DOC.maxSequence), named: /max sequence length/ },
  sampler: { ok: (v) => v === 'dpm' || v === 'euler', named: /sampler/ },
  flowShift: { ok: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0, named: /flow shift/ },
};

const junk = fc.oneof(
  fc.constantFrom(0, -1, 1.5, NaN, Infinity, -Infinity, '', '1', '20', 'dpm ', null, true, false, [], {}, [1], 2n ** 64n, -(2n ** 63n) - 1n, 2 ** 53),
  fc.string({ maxLength: 5 }),
  fc.integer({ min: -100, max: 100 }),
  fc.double(),
  fc.anything({ maxDepth: 1 }),
);
// each field is junk one time in 13, so that about a third of the requests are valid as a whole
const field = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: junk });

const requestArb = fc.record(
  {
    prompts: field(
      fc.oneof(
        { weight: 20, arbitrary: fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 3 }) },
        // at and past the limits: 64 / 65 prompts, a prompt of 131072 / 131073 characters
        { weight: 1, arbitrary: fc.constantFrom(64, 65).map((n) => Array.from({ length: n }, () => 'p')) },
        { weight: 1, arbitrary: fc.constantFrom(131072, 131073).map((n) => ['x'.repeat(n)]) },
      ),
    ),
    negativePrompt: field(fc.oneof({ weight: 20, arbitrary: fc.string({ maxLength: 10 }) }, { weight: 1, arbitrary: fc.constantFrom(131072, 131073).map((n) => 'n'.repeat(n)) })),
    width: field(fc.oneof(fc.integer({ min: 32, max: 2048 }), fc.constantFrom(32, 256, 512, 8192))),
    height: field(fc.oneof(fc.integer({ min: 32, max: 2048 }), fc.constantFrom(32, 256, 1024))),
    steps: field(fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 100 }) }, { weight: 1, arbitrary: fc.constantFrom(1000, 1001, 10 ** 9) })),
    guidanceScale: field(fc.double({ min: 0, max: 20, noNaN: true })),
    seed: field(fc.oneof(fc.integer(), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: -(2n ** 63n), max: -1n }))),
    numImagesPerPrompt: field(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constantFrom(21, 22, 64, 65, 2 ** 31) })),
    binning: field(fc.boolean()),
    maxSequenceLength: field(fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 2, max: 300 }) }, { weight: 1, arbitrary: fc.constantFrom(1, 4096, 4097, 2 ** 40) })),
    sampler: field(fc.constantFrom('dpm', 'euler')),
    flowShift: field(fc.double({ min: 0.1, max: 10, noNaN: true })),
  },
  { requiredKeys: ['prompts'] },
);

const DEFAULTS: Record<string, unknown> = {
  negativePrompt: '',
  width: DEFAULT_SIZE,
  height: DEFAULT_SIZE,
  steps: 20,
  guidanceScale: 4.5,
  numImagesPerPrompt: 1,
  binning: true,
  maxSequenceLength: 300,
};

describe('fuzz: resolveRequest (the validation the CLI, the library and the server share)', () => {
  test(`${RUNS.request} requests of valid and invalid values (seed ${FUZZ_SEED})`, () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        const given = req as Record<string, unknown>;
        const invalid = Object.keys(RULES).filter((k) => k in given && (k === 'prompts' || given[k] !== undefined) && !RULES[k].ok(given[k], given));
        // a size left to its default must still suit binning off
        for (const k of ['width', 'height']) if (given[k] === undefined && given.binning === false && DEFAULT_SIZE % 32 !== 0) invalid.push(k);
        let resolved: ReturnType<typeof resolveRequest>;
        try {
          resolved = resolveRequest(req as unknown as GenerateRequest, DEFAULT_SIZE);
        } catch (e) {
          assertOwnError(e, ['RequestError'], /./);
          assert.ok(e instanceof RequestError);
          assert.ok(invalid.length > 0, `refused a valid request: ${e.message}`);
          assert.ok(invalid.some((k) => RULES[k].named.test(e.message)), `the message names none of ${invalid.join(', ')}: ${e.message}`);
          tally('resolveRequest', 'refused');
          return;
        }
        assert.deepEqual(invalid, [], `accepted invalid ${invalid.join(', ')}`);
        const out = resolved as unknown as Record<string, unknown>;
        for (const [k, d] of Object.entries(DEFAULTS)) assert.equal(out[k], given[k] ?? d, `${k} passed through unchanged`);
        for (const k of ['prompts', 'sampler', 'flowShift']) assert.equal(out[k], given[k], k);
        if (given.seed !== undefined) assert.equal(out.seed, given.seed);
        else assert.ok(Number.isSafeInteger(out.seed), 'a random seed is chosen');
        tally('resolveRequest', 'loaded');
      }),
      { seed: FUZZ_SEED, numRuns: RUNS.request },
    );
    const c = counts.get('resolveRequest')!;
    assert.ok(c.loaded > RUNS.request / 10 && c.refused > RUNS.request / 10, JSON.stringify(c));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// the server's /api/generate

/** Limits small enough that every accepted job is a few tiny steps (docs/server.md: limits are server options). */
const LIMITS = { maxSize: 256, maxSteps: 2, maxImages: 1, maxPromptLength: 40, maxPrompts: 2 };

/** The documented body of POST /api/generate (docs/server.md "Native API"), field by field. */
const BODY_RULES: Record<string, (v: unknown) => boolean> = {
  prompt: (v) =>
    (typeof v === 'string' && v.length >= 1 && v.length <= LIMITS.maxPromptLength) ||
    (Array.isArray(v) && v.length >= 1 && v.length <= LIMITS.maxPrompts && v.every((p) => typeof p === 'string' && p.length <= LIMITS.maxPromptLength)),
  model: (v) => typeof v === 'string' && v.length <= 200,
  negative: (v) => typeof v === 'string' && v.length <= LIMITS.maxPromptLength,
  steps: (v) => isInt(v, 1, LIMITS.maxSteps),
  guidance: (v) => typeof v === 'number' && v >= 0 && v <= 50,
  seed: (v) => isInt(v, 0) || (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)),
  width: (v) => isInt(v, 32, LIMITS.maxSize),
  height: (v) => isInt(v, 32, LIMITS.maxSize),
  noBinning: (v) => typeof v === 'boolean',
  sampler: (v) => v === 'dpm' || v === 'euler',
  flowShift: (v) => typeof v === 'number' && v > 0 && v <= 100,
  numImages: (v) => isInt(v, 1, LIMITS.maxImages),
  maxSequenceLength: (v) => isInt(v, DOC.minSequence, DOC.maxSequence),
  preview: (v) => typeof v === 'boolean',
};

const jsonJunk = fc.oneof(
  fc.constantFrom(0, -1, 1.5, 3, 101, 257, 4097, '', '1', 'true', 'dpm ', null, true, [], {}, [1], '123456789012345678901', 'x'.repeat(41)),
  fc.string({ maxLength: 5 }),
  fc.integer({ min: -300, max: 300 }),
  fc.jsonValue({ maxDepth: 1 }),
);
const bodyField = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 16, arbitrary: valid }, { weight: 1, arbitrary: jsonJunk });
const bodyArb = fc.record(
  {
    prompt: bodyField(fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 2 }))),
    model: bodyField(fc.oneof({ weight: 6, arbitrary: fc.constant('default') }, { weight: 1, arbitrary: fc.constantFrom('nope', '') })),
    negative: bodyField(fc.string({ maxLength: 10 })),
    steps: bodyField(fc.integer({ min: 1, max: 2 })),
    guidance: bodyField(fc.double({ min: 0, max: 50, noNaN: true })),
    seed: bodyField(fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), fc.bigInt({ min: 0n, max: 2n ** 64n + 9n }).map(String))),
    width: bodyField(fc.oneof(fc.constantFrom(32, 64, 128, 192, 256), fc.integer({ min: 32, max: 256 }))),
    height: bodyField(fc.oneof(fc.constantFrom(32, 64, 128, 192, 256), fc.integer({ min: 32, max: 256 }))),
    noBinning: bodyField(fc.boolean()),
    sampler: bodyField(fc.constantFrom('dpm', 'euler')),
    flowShift: bodyField(fc.double({ min: 0.01, max: 100, noNaN: true })),
    numImages: bodyField(fc.constant(1)),
    maxSequenceLength: bodyField(fc.integer({ min: 1, max: 4096 })),
    preview: bodyField(fc.boolean()),
  },
  { requiredKeys: [] },
);
/** A body, now and then with a field the API does not have. */
const withExtraArb = fc
  .tuple(bodyArb, fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('extra', 'Prompt', 'constructor', 'steps ') }))
  .map(([b, extra]) => (extra === undefined ? b : Object.assign({ ...b }, JSON.parse(`{${JSON.stringify(extra)}: 1}`))));
/** What is sent: mostly objects, sometimes another JSON value or text that is not JSON at all. */
const payloadArb = fc.oneof(
  { weight: 12, arbitrary: withExtraArb.map((b) => ({ body: b as Record<string, unknown>, text: JSON.stringify(b) })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }).filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)).map((v) => ({ body: v, text: JSON.stringify(v) })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }).map((text) => ({ body: undefined as unknown, text: `{${text}` })) },
);

/** The answers the rules allow for a body: [status, field it names (param or in the message)]. */
function allowedAnswers(body: unknown): Array<[number, string | null]> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [[400, null]];
  const b = body as Record<string, unknown>;
  const schemaErrors: Array<[number, string | null]> = [];
  for (const [k, v] of Object.entries(b)) {
    if (!Object.hasOwn(BODY_RULES, k)) schemaErrors.push([400, k]);
    else if (!BODY_RULES[k](v)) schemaErrors.push([400, k]);
  }
  if (!('prompt' in b)) schemaErrors.push([400, 'prompt']);
  if (schemaErrors.length) return schemaErrors;
  const semantic: Array<[number, string | null]> = [];
  if (b.model !== undefined && b.model !== 'default') semantic.push([404, 'model']);
  if (typeof b.seed === 'string' && BigInt(b.seed) >= 2n ** 64n) semantic.push([400, 'seed']);
  const prompts = Array.isArray(b.prompt) ? b.prompt.length : 1;
  if (prompts * ((b.numImages as number) ?? 1) > LIMITS.maxImages) semantic.push([400, 'numImages']);
  if (b.noBinning === true) {
    for (const k of ['width', 'height']) if (((b[k] as number) ?? 256) % 32 !== 0) semantic.push([400, k]);
  }
  if (semantic.length) return semantic;
  return [[202, null], [429, null]];
}

describe('fuzz: the server API (/api/generate through Fastify and Ajv, as served)', () => {
  let server: SanaServer;
  before(async () => {
    server = await startSanaServer({ port: 0, queueSize: 1, keepJobs: 20, limits: LIMITS, previewEvery: 1000 });
  });
  after(() => server.close());

  test(`${RUNS.server} request bodies (seed ${FUZZ_SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, async ({ body, text }) => {
        const res = await server.app.inject({ method: 'POST', url: '/api/generate', headers: { 'content-type': 'application/json' }, payload: text });
        const answer = res.json() as { error?: { message: string; type: string; param: string | null }; id?: string };
        assert.notEqual(res.statusCode, 500, `a server error: ${res.body}`);
        if (res.statusCode === 202) {
          // nothing to wait for: cancel at once (a running job stops at its next step)
          await server.app.inject({ method: 'DELETE', url: `/api/jobs/${answer.id}` });
        }
        const allowed = body === undefined ? [[400, null] as [number, null]] : allowedAnswers(body);
        const match = allowed.find(([status, named]) => {
          if (status !== res.statusCode) return false;
          if (named === null || status === 202 || status === 429) return true;
          const e = answer.error!;
          return e.param === named || (e.param ?? '').startsWith(`${named}.`) || e.message.includes(named) || e.message.includes(named === 'numImages' ? 'images' : named);
        });
        assert.ok(match, `answer ${res.statusCode} ${res.body} for ${text}; allowed ${JSON.stringify(allowed)}`);
        if (res.statusCode >= 400) {
          assert.equal(typeof answer.error?.message, 'string');
          assert.doesNotMatch(answer.error!.message, /\n\s+at /, 'a stack trace in the message');
        }
        tally('server /api/generate', res.statusCode === 202 || res.statusCode === 429 ? 'loaded' : 'refused');
      }),
      { seed: FUZZ_SEED, numRuns: RUNS.server },
    );
    const c = counts.get('server /api/generate')!;
    assert.ok(c.loaded > 20 && c.refused > 20, JSON.stringify(c));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// the server's OpenAI-compatible /v1/images/generations
//
// That route answers only once the images are made, so the server here has a queue of capacity 0: a body that
// passes every check reaches the queue and gets its 429 (with Retry-After) at once, which is the route's "accepted".
// Everything before the queue (Ajv, the size parser, the model lookup, the seed, resolveRequest) runs as served.

/** The documented body of POST /v1/images/generations (docs/server.md "OpenAI Images API"), field by field. */
const OPENAI_RULES: Record<string, (v: unknown) => boolean> = {
  prompt: (v) => typeof v === 'string' && v.length >= 1 && v.length <= LIMITS.maxPromptLength,
  model: (v) => typeof v === 'string' && v.length <= 200,
  n: (v) => v === null || isInt(v, 1, LIMITS.maxImages),
  size: (v) => v === null || (typeof v === 'string' && /^(auto|[0-9]{1,5}x[0-9]{1,5})$/.test(v)),
  response_format: (v) => v === null || v === 'b64_json' || v === 'url',
  output_format: (v) => v === null || v === 'png',
  quality: (v) => v === null || (typeof v === 'string' && v.length <= 20),
  style: (v) => v === null || (typeof v === 'string' && v.length <= 20),
  user: (v) => typeof v === 'string' && v.length <= 200,
  seed: (v) => isInt(v, 0) || (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)),
};

const sizeArb = fc.oneof(
  fc.constantFrom('auto', '256x256', '32x32', '192x320', '31x256', '256x257', '0x0', '99999x1', '256', 'x', '256x256 ', 'AUTO'),
  fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 })).map(([w, h]) => `${w}x${h}`),
);
const openAiArb = fc.record(
  {
    prompt: bodyField(fc.string({ minLength: 1, maxLength: 20 })),
    model: bodyField(fc.oneof({ weight: 6, arbitrary: fc.constant('default') }, { weight: 1, arbitrary: fc.constantFrom('dall-e-3', '') })),
    n: bodyField(fc.oneof(fc.constant(1), fc.constant(null), fc.integer({ min: 0, max: 3 }))),
    size: bodyField(fc.oneof(sizeArb, fc.constant(null))),
    response_format: bodyField(fc.constantFrom('b64_json', 'url', null, 'png')),
    output_format: bodyField(fc.constantFrom('png', null, 'jpeg')),
    quality: bodyField(fc.constantFrom('standard', 'hd', null, 'x'.repeat(21))),
    style: bodyField(fc.constantFrom('vivid', 'natural', null)),
    user: bodyField(fc.string({ maxLength: 10 })),
    seed: bodyField(fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), fc.bigInt({ min: 0n, max: 2n ** 64n + 9n }).map(String))),
  },
  { requiredKeys: [] },
);
const openAiPayloadArb = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .tuple(openAiArb, fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('steps', 'Prompt', 'constructor', 'n ') }))
      .map(([b, extra]) => (extra === undefined ? b : Object.assign({ ...b }, JSON.parse(`{${JSON.stringify(extra)}: 1}`))))
      .map((b) => ({ body: b as unknown, text: JSON.stringify(b) })),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }).filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)).map((v) => ({ body: v, text: JSON.stringify(v) })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }).map((text) => ({ body: undefined as unknown, text: `{${text}` })) },
);

function openAiAnswers(body: unknown): Array<[number, string | null]> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [[400, null]];
  const b = body as Record<string, unknown>;
  const schemaErrors: Array<[number, string | null]> = [];
  for (const [k, v] of Object.entries(b)) if (!Object.hasOwn(OPENAI_RULES, k) || !OPENAI_RULES[k](v)) schemaErrors.push([400, k]);
  if (!('prompt' in b)) schemaErrors.push([400, 'prompt']);
  if (schemaErrors.length) return schemaErrors;
  const semantic: Array<[number, string | null]> = [];
  if (b.model !== undefined && b.model !== 'default') semantic.push([404, 'model']);
  if (typeof b.size === 'string' && b.size !== 'auto') {
    const [w, h] = b.size.split('x').map(Number);
    if (!(w >= 32 && h >= 32 && w <= LIMITS.maxSize && h <= LIMITS.maxSize)) semantic.push([400, 'size']);
  }
  if (typeof b.seed === 'string' && BigInt(b.seed) >= 2n ** 64n) semantic.push([400, 'seed']);
  if (semantic.length) return semantic;
  return [[429, null]];
}

describe('fuzz: the OpenAI Images route (/v1/images/generations through Fastify and Ajv, as served)', () => {
  let server: SanaServer;
  before(async () => {
    server = await startSanaServer({ port: 0, queueSize: 0, keepJobs: 20, limits: LIMITS, previewEvery: 1000 });
  });
  after(() => server.close());

  test(`${RUNS.openai} request bodies (seed ${FUZZ_SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(openAiPayloadArb, async ({ body, text }) => {
        const res = await server.app.inject({ method: 'POST', url: '/v1/images/generations', headers: { 'content-type': 'application/json' }, payload: text });
        const answer = res.json() as { error?: { message: string; type: string; param: string | null } };
        assert.notEqual(res.statusCode, 500, `a server error: ${res.body}`);
        const allowed = body === undefined ? [[400, null] as [number, null]] : openAiAnswers(body);
        const match = allowed.find(([status, named]) => {
          if (status !== res.statusCode) return false;
          if (named === null) return true;
          const e = answer.error!;
          return e.param === named || (e.param ?? '').startsWith(`${named}.`) || e.message.includes(named);
        });
        assert.ok(match, `answer ${res.statusCode} ${res.body} for ${text}; allowed ${JSON.stringify(allowed)}`);
        assert.equal(typeof answer.error?.message, 'string', 'every answer here is an error in the OpenAI format');
        assert.doesNotMatch(answer.error!.message, /\n\s+at /, 'a stack trace in the message');
        if (res.statusCode === 429) assert.match(String(res.headers['retry-after']), /^[0-9]+$/);
        tally('server /v1/images/generations', res.statusCode === 429 ? 'loaded' : 'refused');
      }),
      { seed: FUZZ_SEED, numRuns: RUNS.openai },
    );
    const c = counts.get('server /v1/images/generations')!;
    assert.ok(c.loaded > 20 && c.refused > 20, JSON.stringify(c));
  });
});
