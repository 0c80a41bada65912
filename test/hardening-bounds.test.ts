// Issue #17 class 4, every size bounded before work starts: the limits of src/limits.ts as docs/limits.md states
// them, through each way in (the library's request, prompt encoding, the CLI, the server, the runtime's threads,
// a config's layer count), each refused in milliseconds with a message naming the argument. The expected limits
// are the documented numbers, written here, not read from the code. ref: src/limits.ts, docs/limits.md

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { LimitError, capThreads, checkImageMemory, coreCount } from '../src/limits.js';
import { DEFAULT_MODEL_DIR, loadSanaPipeline } from '../src/pipeline/components.js';
import { RequestError, resolveRequest } from '../src/pipeline/request.js';
import { ortSessionOptions } from '../src/runtime/node-backend.js';
import { resolveServerLimits } from '../src/server/schemas.js';
import { startSanaServer } from '../src/server/server.js';
import { preparePrompts } from '../src/text/prompt-encoding.js';
import { GemmaTokenizer } from '../src/text/tokenizer.js';
import { repoRoot } from './helpers/fixtures.js';

const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-h17-bounds-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Runs f, which must throw a RequestError matching `pattern`, within `ms` milliseconds. */
function refusedFast(f: () => unknown, pattern: RegExp, ms = 200): void {
  const t0 = performance.now();
  assert.throws(f, (e: unknown) => e instanceof RequestError && pattern.test(e.message) && !e.message.includes('\n'));
  assert.ok(performance.now() - t0 < ms, `took ${(performance.now() - t0).toFixed(0)} ms`);
}

test('requests: each documented limit is accepted at its value and refused one past it, naming the field and the reason', () => {
  const ok = (extra: object) => resolveRequest({ prompts: ['a'], ...extra }, 256);
  // [field, value at the limit, one past, what the message names]
  const cases: Array<[string, unknown, unknown, RegExp]> = [
    ['steps', 1000, 1001, /^steps is 1001; at most 1000 is accepted \(.*1000 timesteps/],
    ['numImagesPerPrompt', 64, 65, /^number of images per prompt is 65; at most 64/],
    ['maxSequenceLength', 4096, 4097, /^max sequence length is 4097; at most 4096 is accepted \(.*sliding window/],
    ['width', 8192, 8193, /^width must be an integer from 32 to 8192, got 8193/],
  ];
  for (const [field, at, past, message] of cases) {
    assert.doesNotThrow(() => ok({ [field]: at, width: field === 'width' ? at : 64, height: 64 }), field);
    refusedFast(() => ok({ [field]: past, height: 64 }), message);
  }
  refusedFast(() => ok({ maxSequenceLength: 1 }), /^max sequence length must be an integer >= 2, got 1/);
  // prompts: count, then each one's length; negative prompt too
  assert.doesNotThrow(() => resolveRequest({ prompts: new Array(64).fill('a') }, 256));
  refusedFast(() => resolveRequest({ prompts: new Array(65).fill('a') }, 256), /^the number of prompts is 65; at most 64/);
  refusedFast(() => resolveRequest({ prompts: ['a', 'x'.repeat(131073)] }, 256), /^prompt 1 has 131073 characters; at most 131072/);
  refusedFast(() => resolveRequest({ prompts: ['a'], negativePrompt: 'x'.repeat(131073) }, 256), /^the negative prompt has 131073 characters/);
  assert.doesNotThrow(() => resolveRequest({ prompts: ['x'.repeat(131072)] }, 256));
  // images per call: 8 prompts x 8 = 64 fine, 9 x 8 = 72 not
  assert.doesNotThrow(() => resolveRequest({ prompts: new Array(8).fill('a'), numImagesPerPrompt: 8, width: 64, height: 64 }, 256));
  refusedFast(() => resolveRequest({ prompts: new Array(9).fill('a'), numImagesPerPrompt: 8 }, 256), /^9 prompts x 8 images per prompt = 72 images; at most 64/);
});

test('image memory: the pixel buffers (images x W x H x 40 bytes) may take half the memory; the message gives both in GiB', () => {
  const gib = 2 ** 30;
  // 4 images of 4096 x 4096 = 2.5 GiB of buffers: fits in 8 GiB (budget 4), not in 4 GiB (budget 2)
  assert.doesNotThrow(() => checkImageMemory(4, 4096, 4096, 8 * gib));
  assert.throws(() => checkImageMemory(4, 4096, 4096, 4 * gib), (e: unknown) => e instanceof LimitError && /need 2\.5 GiB .* has 4\.0 GiB/.test(e.message));
  // through a request, on this machine: 64 images of 8192 x 8192 need 160 GiB, more than any machine these tests run on
  refusedFast(() => resolveRequest({ prompts: ['a'], numImagesPerPrompt: 64, width: 8192, height: 8192 }, 256), /^64 image\(s\) of 8192x8192 need 160\.0 GiB/);
});

test('threads: capped at the core count with a notice, never an error; 0 or a fraction is an error naming the option', () => {
  const cores = coreCount();
  assert.equal(cores, os.availableParallelism());
  assert.deepEqual(capThreads(undefined), { threads: cores });
  assert.deepEqual(capThreads(1), { threads: 1 });
  const capped = capThreads(cores + 7, '--threads');
  assert.equal(capped.threads, cores);
  assert.equal(capped.notice, `--threads ${cores + 7} is more than the ${cores} cores of this machine; using ${cores}`);
  for (const bad of [0, -1, 1.5, NaN]) assert.throws(() => capThreads(bad, 'option threads'), /option threads must be a positive integer/);
  // the library's sessions get the capped count
  assert.equal(ortSessionOptions({ threads: 10_000 }).intraOpNumThreads, cores);
});

test('the CLI: a flag past its limit exits 2 with one line naming the flag, before any model loads; --threads too high is a notice', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: root, timeout: 60_000 });
  const cases: Array<[string[], RegExp]> = [
    [['generate', 'a', '--steps', '1001'], /^sana generate: steps is 1001; at most 1000/],
    [['generate', 'a', '--num-images', '65'], /^sana generate: number of images per prompt is 65; at most 64/],
    [['generate', 'a', '--max-sequence-length', '5000'], /^sana generate: max sequence length is 5000/],
    [['make-shapes', '--out', path.join(root, 's'), '--count', '99999999'], /^sana make-shapes: --count is 99999999; at most 10000000/],
    [['make-shapes', '--out', path.join(root, 's'), '--size', '9000'], /^sana make-shapes: --size is 9000; at most 8192/],
    [['make-shapes', '--out', path.join(root, 's'), '--position-first', '2'], /^sana make-shapes: --position-first: expected a probability in \[0, 1\], got 2/],
    [['make-shapes', '--out', path.join(root, 's'), '--omit-color', '0.6', '--omit-shape', '0.6'], /^sana make-shapes: --omit-color \+ --omit-shape must be at most 1, got 0.6 \+ 0.6/],
    [['serve', '--max-steps', '5000'], /^sana serve: --max-steps is 5000; at most 1000/],
    [['serve', '--max-size', '16'], /^sana serve: --max-size must be an integer >= 32, got 16/],
  ];
  for (const [args, message] of cases) {
    const t0 = performance.now();
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(performance.now() - t0 < 10_000);
  }
  const r = run('generate', 'a red circle', '--steps', '1', '--threads', '999', '-o', path.join(root, 'x.png'), '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^notice: --threads 999 is more than the ${coreCount()} cores of this machine; using ${coreCount()}`));
  assert.ok(fs.statSync(path.join(root, 'x.png')).size > 0);
});

test('a 100 kB prompt given on the command line is truncated to the window with a notice; the process does not crash in ONNX Runtime', () => {
  // ~100 kB: past the ~50 kB at which ORT's telemetry std::regex over the command line overflowed the native stack
  const prompt = 'a red circle '.repeat(7700);
  const r = spawnSync(process.execPath, [CLI, 'generate', prompt, '--steps', '1', '-o', path.join(root, 'long.png')], { encoding: 'utf8', cwd: root, timeout: 120_000 });
  assert.equal(r.signal, null, `killed by ${r.signal}`);
  assert.equal(r.status, 0, r.stderr.slice(-500));
  // the count of dropped tokens: this model's word tokenizer gives one token per word (3 x 7700), 299 fit
  assert.match(r.stderr, /warning: prompt 0: 22801 token\(s\) beyond the 299 that fit after the instruction were dropped \(max_sequence_length 300\)/);
  assert.ok(fs.statSync(path.join(root, 'long.png')).size > 0);
});

test('prompt encoding (the library below requests): lengths, counts and the instruction are bounded before tokenizing', () => {
  const tokenizer = GemmaTokenizer.fromFolder(path.join(DEFAULT_MODEL_DIR, 'tokenizer'));
  const t0 = performance.now();
  assert.throws(() => preparePrompts(['x'.repeat(131073)], {}, tokenizer), /encodePrompts: prompt 0 has 131073 characters; at most 131072/);
  assert.throws(() => preparePrompts(['a'], { negative: 'n'.repeat(131073) }, tokenizer), /encodePrompts: negative prompt 0 has 131073 characters/);
  assert.throws(() => preparePrompts(['a'], { maxSequenceLength: 4097 }, tokenizer), /encodePrompts: option maxSequenceLength is 4097; at most 4096/);
  assert.throws(() => preparePrompts(['a'], { instruction: ['word '.repeat(30000)] }, tokenizer), /encodePrompts: option instruction has 150000 characters/);
  // an instruction within the characters but past 4096 tokens: one word is one token with this tokenizer
  assert.throws(() => preparePrompts(['a'], { instruction: ['red '.repeat(5000)] }, tokenizer), /encodePrompts: the instruction \(tokens\) is 500[0-9]; at most 4096/);
  assert.ok(performance.now() - t0 < 5000, `took ${(performance.now() - t0).toFixed(0)} ms`);
  // the complex human instruction path truncates the prompt to the window and says how many tokens went
  const p = preparePrompts(['red '.repeat(400)], {}, tokenizer);
  assert.equal(p.selectIndex.length, 300);
  assert.deepEqual(p.warnings, ['prompt 0: 101 token(s) beyond the 299 that fit after the instruction were dropped (max_sequence_length 300)']);
});

test('server: its limits may not exceed the library limits; an out-of-range option is refused naming it', async () => {
  assert.deepEqual(resolveServerLimits({ maxSteps: undefined, maxSize: 512 }), { maxSize: 512, maxSteps: 100, maxImages: 4, maxPromptLength: 4000, maxPrompts: 4 });
  assert.throws(() => resolveServerLimits({ maxSteps: 1001 }), /server limit maxSteps must be an integer from 1 to 1000/);
  assert.throws(() => resolveServerLimits({ maxPromptLength: 200_000 }), /server limit maxPromptLength must be an integer from 1 to 131072/);
  await assert.rejects(startSanaServer({ port: 0, limits: { maxImages: 65 } }), /server limit maxImages must be an integer from 1 to 64/);
  const server = await startSanaServer({ port: 0, limits: { maxSteps: 2 } });
  try {
    const res = await server.app.inject({ method: 'POST', url: '/api/generate', payload: { prompt: 'a', maxSequenceLength: 4097 } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.param, 'maxSequenceLength');
  } finally {
    await server.close();
  }
});

test('a config with more layers than its checkpoint is refused at load, in milliseconds, naming the file and key (transformer, text encoder, DC-AE)', async () => {
  const model = path.join(root, 'model');
  fs.cpSync(DEFAULT_MODEL_DIR, model, { recursive: true });
  const edit = (file: string, key: string, value: number) => {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    c[key] = value;
    fs.writeFileSync(file, JSON.stringify(c));
  };
  const transformerConfig = path.join(model, 'transformer', 'config.json');
  edit(transformerConfig, 'num_layers', 100_000);
  // at load, from the weights' header: before the text encoder runs, not when the transformer's turn comes
  let t0 = performance.now();
  await assert.rejects(loadSanaPipeline(model, { threads: 1 }), (e: Error) =>
    e.message === `${transformerConfig}: config key "num_layers" is 100000, but ${path.join(model, 'transformer', 'diffusion_pytorch_model.safetensors')} has 6 transformer_blocks (no transformer_blocks.6); the config does not belong to these weights`,
  );
  assert.ok(performance.now() - t0 < 2000);
  edit(transformerConfig, 'num_layers', 6);
  const textConfig = path.join(model, 'text_encoder', 'config.json');
  edit(textConfig, 'num_hidden_layers', 1_000_000);
  t0 = performance.now();
  const again = await loadSanaPipeline(model, { threads: 1 });
  await assert.rejects(again.pipeline.components.loadPromptEncoder(), /text_encoder[/\\]config\.json: config key "num_hidden_layers" is 1000000, but .* has 2 layers \(no layers\.2\)/);
  assert.ok(performance.now() - t0 < 2000);
  edit(textConfig, 'num_hidden_layers', 2);
  // the DC-AE: each stage's layers_per_block (plus its sampling block) against the checkpoint
  const vaeConfigFile = path.join(model, 'vae', 'config.json');
  const vaeConfig = JSON.parse(fs.readFileSync(vaeConfigFile, 'utf8')) as { decoder_layers_per_block: number[] };
  const layers = [...vaeConfig.decoder_layers_per_block];
  layers[1] = 100_000;
  fs.writeFileSync(vaeConfigFile, JSON.stringify({ ...vaeConfig, decoder_layers_per_block: layers }));
  t0 = performance.now();
  const third = await loadSanaPipeline(model, { threads: 1 });
  await assert.rejects(third.pipeline.components.loadDecoder(), /config key "decoder_layers_per_block\[1\] \(with the sampling block\)" is 100001, but .* has \d+ decoder\.up_blocks\.1 \(no decoder\.up_blocks\.1\.\d+\)/);
  assert.ok(performance.now() - t0 < 2000);
});
