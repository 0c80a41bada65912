// The instruction prefix cache of the Gemma-2 text encoder (src/models/gemma2/prefix-cache.ts): the cached graph
// against transformers' outputs on the fixtures, cached against uncached runs (sliding window crossed, softcap
// saturated, padding, batches), the REAL Gemma-2 tokenizer's instruction on a tiny random encoder, and the
// persisted prefix files (written once, read back, rewritten when damaged, never beside read-only checkpoints).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { Gemma2LoadOptions, Gemma2TextEncoder, buildGemma2FromFolder, loadGemma2 } from '../src/models/gemma2/loader.js';
import { startsWithPrefix } from '../src/models/gemma2/prefix-cache.js';
import { encodePrompts, preparePrompts } from '../src/text/prompt-encoding.js';
import { GemmaTokenizer } from '../src/text/tokenizer.js';
import { assertClose, compareArrays } from './helpers/compare.js';
import { Tolerance, fixturePath, fixtureTensor, loadManifest, repoRoot } from './helpers/fixtures.js';

const threads = 1;
const realTokenizerDir = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-gemma2', 'models');

function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Rows of ids [B, T] with their first `n` tokens replaced by row 0's, so that every row shares that prefix. */
function sharePrefix(ids: HostTensor, n: number): HostTensor<'int64'> {
  const [b, t] = ids.shape;
  const d = (ids.data as BigInt64Array).slice();
  for (let r = 1; r < b; r++) for (let j = 0; j < n; j++) d[r * t + j] = d[j];
  return new HostTensor('int64', [b, t], d);
}

function firstTokens(ids: HostTensor, n: number): number[] {
  return Array.from((ids.data as BigInt64Array).subarray(0, n), Number);
}

/** Max |a - b| over every element; fp32 rounding of these magnitudes is ~1e-6. */
function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  assert.deepEqual([...a.shape], [...b.shape]);
  return compareArrays(a.toFloat32(), b.toFloat32(), { atol: 0 }).maxAbs;
}

/** Both encoders of a folder: the plain graph and the cached variant (prefix files in a temporary folder). */
async function pair(dir: string, options: Record<string, unknown> = {}): Promise<{ plain: Gemma2TextEncoder; cached: Gemma2TextEncoder; cacheDir: string }> {
  const cacheDir = tmpDir('gemma2-prefix-');
  const plain = await loadGemma2(dir, { threads, ...options });
  const cached = await loadGemma2(dir, { threads, ...options, prefixCache: true, weightCacheDir: cacheDir });
  return { plain, cached, cacheDir };
}

test('cached graph, no prefix held: every fixture row matches transformers (gemma2_tiny, gemma2_tiny_window)', async () => {
  for (const fixture of ['gemma2_tiny', 'gemma2_tiny_window']) {
    const encoder = await loadGemma2(fixturePath(fixture, 'component'), { threads, prefixCache: true, weightCacheDir: null });
    assert.ok(encoder.cachesPrefixes);
    assert.ok(!encoder.outputNames.some((n) => n.startsWith('present_')), 'cache outputs are not model outputs');
    const got = (await encoder.encode(fixtureTensor(fixture, 'inputs', 'input_ids'), fixtureTensor(fixture, 'inputs', 'attention_mask'))).lastHiddenState;
    const tol = loadManifest(fixture).tolerance!.last_hidden_state as Tolerance;
    assertClose(got, fixtureTensor(fixture, 'outputs', 'last_hidden_state'), tol, `${fixture} (empty past)`);
    await encoder.release();
  }
});

test('gemma2_tiny_window: a cached prefix of row 0 reproduces transformers\' row 0 (window 4 crossed, softcap 2)', async () => {
  const fixture = 'gemma2_tiny_window';
  const ids = fixtureTensor(fixture, 'inputs', 'input_ids');
  const [, t] = ids.shape;
  const row0 = HostTensor.int64([1, t], (ids.data as BigInt64Array).slice(0, t));
  const mask0 = HostTensor.int64([1, t], new Array(t).fill(1));
  assert.ok((fixtureTensor(fixture, 'inputs', 'attention_mask').data as BigInt64Array).subarray(0, t).every((m) => m === 1n), 'row 0 is unpadded');
  const ref = fixtureTensor(fixture, 'outputs', 'last_hidden_state').toFloat32();
  const hidden = ref.length / ids.shape[0] / t;
  const tol = loadManifest(fixture).tolerance!.last_hidden_state as Tolerance;
  const encoder = await loadGemma2(fixturePath(fixture, 'component'), { threads, prefixCache: true, weightCacheDir: null });
  // prefix 1 (BOS only), 5 (queries after it reach back past the window of 4 into it), 11 (one new token)
  for (const p of [1, 5, 11]) {
    const state = await encoder.cachePrefix(firstTokens(row0, p));
    assert.equal(state!.ids.length, p);
    assert.ok(startsWithPrefix(state!, row0, mask0));
  }
  // holding all three, the encoder runs after the longest
  assertClose((await encoder.encode(row0, mask0)).lastHiddenState.data, ref.subarray(0, t * hidden), tol, 'row 0, three prefixes held');
  for (const p of [1, 5, 11]) {
    const single = await loadGemma2(fixturePath(fixture, 'component'), { threads, prefixCache: true, weightCacheDir: null });
    await single.cachePrefix(firstTokens(row0, p));
    const got = (await single.encode(row0, mask0)).lastHiddenState;
    assertClose(got.data, ref.subarray(0, t * hidden), tol, `row 0 after a cached prefix of ${p}`);
    await single.release();
  }
  await encoder.release();
});

test('cached vs uncached, batch 2 with right padding: the same states within fp32 rounding on both fixtures', async (t) => {
  for (const fixture of ['gemma2_tiny', 'gemma2_tiny_window']) {
    const { plain, cached, cacheDir } = await pair(fixturePath(fixture, 'component'));
    const mask = fixtureTensor(fixture, 'inputs', 'attention_mask'); // row 1 padded at the end
    for (const p of [2, 4, 7]) {
      const ids = sharePrefix(fixtureTensor(fixture, 'inputs', 'input_ids'), p);
      const state = await cached.cachePrefix(firstTokens(ids, p));
      assert.ok(startsWithPrefix(state!, ids, mask), 'the cached path is taken');
      const a = (await plain.encode(ids, mask)).lastHiddenState;
      const b = (await cached.encode(ids, mask)).lastHiddenState;
      const d = maxAbsDiff(a, b);
      assert.ok(d <= 1e-5, `${fixture} prefix ${p}: max |cached - uncached| = ${d}`);
      t.diagnostic(`${fixture} prefix ${p}: max |cached - uncached| = ${d}`);
    }
    // a row that does not start with a held prefix falls back to the full run (same numbers)
    const ids = fixtureTensor(fixture, 'inputs', 'input_ids');
    const d = maxAbsDiff((await plain.encode(ids, mask)).lastHiddenState, (await cached.encode(ids, mask)).lastHiddenState);
    assert.ok(d <= 1e-5, `${fixture} fallback: ${d}`);
    await plain.release();
    await cached.release();
    fs.rmSync(cacheDir, { recursive: true });
  }
});

test('softcap saturated (q/k weights x20, cap 2): cached equals uncached; without the cap both change alike', async (t) => {
  const fixture = 'gemma2_tiny_window';
  const dir = tmpDir('gemma2-softcap-');
  fs.copyFileSync(fixturePath(fixture, 'component', 'config.json'), path.join(dir, 'config.json'));
  const w = readSafetensors(fixturePath(fixture, 'component', 'model.safetensors'));
  for (const [k, v] of w) if (/self_attn\.(q|k)_proj/.test(k)) w.set(k, HostTensor.float32(v.shape, v.toFloat32().map((x) => x * 20)));
  writeSafetensors(path.join(dir, 'model.safetensors'), w);
  const ids = sharePrefix(fixtureTensor(fixture, 'inputs', 'input_ids'), 6);
  const mask = fixtureTensor(fixture, 'inputs', 'attention_mask');
  const results: HostTensor[] = [];
  for (const softcap of [true, false]) {
    const { plain, cached, cacheDir } = await pair(dir, { softcap });
    await cached.cachePrefix(firstTokens(ids, 6));
    const a = (await plain.encode(ids, mask)).lastHiddenState;
    const b = (await cached.encode(ids, mask)).lastHiddenState;
    const d = maxAbsDiff(a, b);
    assert.ok(d <= 1e-5, `softcap ${softcap}: max |cached - uncached| = ${d}`);
    t.diagnostic(`softcap ${softcap}: max |cached - uncached| = ${d}`);
    results.push(b);
    await plain.release();
    await cached.release();
    fs.rmSync(cacheDir, { recursive: true });
  }
  assert.ok(maxAbsDiff(results[0], results[1]) > 0.1, 'the cap matters with these logits (so the test can fail)');
  fs.rmSync(dir, { recursive: true });
});

/** A tiny Gemma-2 with the real vocabulary (256000 ids), seeded random weights, sliding window 32 on even layers. */
function tinyRealVocabEncoder(): string {
  const dir = tmpDir('gemma2-realvocab-');
  const H = 16;
  const heads = 2;
  const kvHeads = 1;
  const D = 8;
  const I = 32;
  const layers = 3;
  const config = {
    model_type: 'gemma2', vocab_size: 256000, hidden_size: H, intermediate_size: I, num_hidden_layers: layers,
    num_attention_heads: heads, num_key_value_heads: kvHeads, head_dim: D, hidden_activation: 'gelu_pytorch_tanh',
    rms_norm_eps: 1e-6, rope_theta: 10000, query_pre_attn_scalar: D, attn_logit_softcapping: 5.0, sliding_window: 32,
    attention_bias: false, pad_token_id: 0, bos_token_id: 2, eos_token_id: 1,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  let s = 12345;
  const rand = (n: number, scale: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[i] = (s / 4294967296 - 0.5) * 2 * scale;
    }
    return a;
  };
  const w = new Map<string, HostTensor>();
  const put = (name: string, shape: number[], scale: number) => w.set(name, HostTensor.float32(shape, rand(shape.reduce((p, d) => p * d, 1), scale)));
  put('embed_tokens.weight', [256000, H], 0.5);
  for (let i = 0; i < layers; i++) {
    const p = `layers.${i}`;
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) put(`${p}.${n}.weight`, [H], 0.2);
    put(`${p}.self_attn.q_proj.weight`, [heads * D, H], 0.8);
    put(`${p}.self_attn.k_proj.weight`, [kvHeads * D, H], 0.8);
    put(`${p}.self_attn.v_proj.weight`, [kvHeads * D, H], 0.4);
    put(`${p}.self_attn.o_proj.weight`, [H, heads * D], 0.4);
    put(`${p}.mlp.gate_proj.weight`, [I, H], 0.4);
    put(`${p}.mlp.up_proj.weight`, [I, H], 0.4);
    put(`${p}.mlp.down_proj.weight`, [H, I], 0.3);
  }
  put('norm.weight', [H], 0.2);
  writeSafetensors(path.join(dir, 'model.safetensors'), w);
  return dir;
}

test('REAL Gemma-2 tokenizer instruction, tiny random encoder: cached prompt embeddings equal uncached ones', async (t) => {
  const tok = GemmaTokenizer.fromFolder(realTokenizerDir);
  const dir = tinyRealVocabEncoder();
  const { plain, cached, cacheDir } = await pair(dir);
  const prompts = ['A cat holding a sign that says Hello World', 'a red cube on a blue sphere, studio light'];
  // short prompts (trimmed), the untrimmed 300-token window, and a prompt longer than the window (truncated)
  const long = Array.from({ length: 400 }, (_, i) => (i % 2 ? 'cat' : 'dog')).join(' ');
  const cases: Array<[string | string[], Record<string, unknown>]> = [
    [prompts[0], {}],
    [prompts, {}],
    [prompts, { trimPadding: false }],
    [long, {}],
    [prompts[1], { dialect: 'nvlabs', maxSequenceLength: 40 }],
  ];
  for (const [p, options] of cases) {
    const prepared = preparePrompts(p, options, tok);
    // the prefix is the instruction up to its trailing "▁"; the prompt crosses the window of 32 from it
    assert.equal(prepared.instructionPrefix.length, prepared.instructionIds - 1);
    assert.ok(prepared.instructionPrefix.length > 100, `instruction of ${prepared.instructionIds} tokens`);
    const a = await encodePrompts(p, options, tok, plain);
    const b = await encodePrompts(p, options, tok, cached);
    const state = await cached.cachePrefix(prepared.instructionPrefix);
    assert.ok(startsWithPrefix(state!, prepared.prompt.inputIds, prepared.prompt.attentionMask), 'every prompt row takes the cached path');
    const d = Math.max(maxAbsDiff(a.promptEmbeds, b.promptEmbeds), maxAbsDiff(a.negativePromptEmbeds, b.negativePromptEmbeds));
    assert.ok(d <= 1e-5, `${JSON.stringify(options)}: max |cached - uncached| = ${d}`);
    t.diagnostic(`${Array.isArray(p) ? p.length : 1} prompt(s) ${JSON.stringify(options)}, prefix ${prepared.instructionPrefix.length} tokens: max |cached - uncached| = ${d}`);
    assert.deepEqual([...b.promptAttentionMask.data], [...a.promptAttentionMask.data]);
  }
  await plain.release();
  await cached.release();
  fs.rmSync(cacheDir, { recursive: true });
  fs.rmSync(dir, { recursive: true });
});

test('prefix files: written once, read back by the next load, rewritten when damaged, keyed by ids and settings', async () => {
  const fixture = 'gemma2_tiny_window';
  const component = fixturePath(fixture, 'component');
  const cacheDir = tmpDir('gemma2-prefix-files-');
  const ids = sharePrefix(fixtureTensor(fixture, 'inputs', 'input_ids'), 5);
  const mask = fixtureTensor(fixture, 'inputs', 'attention_mask');
  const prefix = firstTokens(ids, 5);
  const load = (options: Record<string, unknown> = {}) => loadGemma2(component, { threads, prefixCache: true, weightCacheDir: cacheDir, ...options });

  const first = await load();
  const made = (await first.cachePrefix(prefix))!;
  assert.equal(made.computed, true);
  assert.ok(made.file && fs.existsSync(made.file) && path.dirname(made.file) === cacheDir, `written to ${made.file}`);
  const expected = (await first.encode(ids, mask)).lastHiddenState;
  await first.release();

  const second = await load();
  const read = (await second.cachePrefix(prefix))!;
  assert.equal(read.computed, false, 'the second load reads the file');
  assert.equal(read.file, made.file);
  assert.equal(maxAbsDiff((await second.encode(ids, mask)).lastHiddenState, expected), 0);
  await second.release();

  // truncated file: recomputed and rewritten, same numbers
  fs.truncateSync(made.file!, fs.statSync(made.file!).size - 7);
  const third = await load();
  const again = (await third.cachePrefix(prefix))!;
  assert.equal(again.computed, true);
  assert.equal(maxAbsDiff((await third.encode(ids, mask)).lastHiddenState, expected), 0);
  // another prefix and another setting get their own files
  const other = (await third.cachePrefix(prefix.slice(0, 3)))!;
  assert.notEqual(other.file, made.file);
  await third.release();
  const uncapped = await load({ softcap: false });
  const u = (await uncapped.cachePrefix(prefix))!;
  assert.equal(u.computed, true);
  assert.notEqual(u.file, made.file);
  await uncapped.release();
  assert.equal(fs.readdirSync(cacheDir).filter((f) => f.startsWith('gemma2-prefix-')).length, 3);

  // weightCacheDir null: memory only
  const memory = await loadGemma2(component, { threads, prefixCache: true, weightCacheDir: null });
  const m = (await memory.cachePrefix(prefix))!;
  assert.equal(m.file, undefined);
  await memory.release();
  // an encoder without the cached graph ignores cachePrefix
  const plain = await loadGemma2(component, { threads });
  assert.equal(await plain.cachePrefix(prefix), null);
  await plain.release();
  fs.rmSync(cacheDir, { recursive: true });
});

test('prefix files never go beside a checkpoint folder that is read-only by its mode (even for root)', async () => {
  const fixture = 'gemma2_tiny';
  const dir = tmpDir('gemma2-readonly-');
  const checkpoint = path.join(dir, 'text_encoder');
  fs.mkdirSync(checkpoint);
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(fixturePath(fixture, 'component', f), path.join(checkpoint, f));
  fs.chmodSync(checkpoint, 0o555);
  const xdg = path.join(dir, 'xdg');
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = xdg;
  try {
    const encoder = await loadGemma2(checkpoint, { threads, prefixCache: true });
    const state = (await encoder.cachePrefix([2, 17, 33]))!;
    assert.equal(path.dirname(state.file!), path.join(xdg, 'sana-ts'));
    assert.ok(!fs.existsSync(path.join(checkpoint, '.sana-ts-cache')));
    await encoder.release();
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
    fs.chmodSync(checkpoint, 0o755);
    fs.rmSync(dir, { recursive: true });
  }
});

test('cached keys read in place and appended to copies (the WebGPU form) give the same states; a WebGPU backend gets the copies', async () => {
  const fixture = 'gemma2_tiny';
  const dir = fixturePath(fixture, 'component');
  const mask = fixtureTensor(fixture, 'inputs', 'attention_mask');
  const ids = sharePrefix(fixtureTensor(fixture, 'inputs', 'input_ids'), 4);
  const states: HostTensor[] = [];
  for (const cachedKeysInPlace of [true, false]) {
    const encoder = await loadGemma2(dir, { threads, prefixCache: true, weightCacheDir: null, cachedKeysInPlace });
    await encoder.cachePrefix(firstTokens(ids, 4));
    states.push((await encoder.encode(ids, mask)).lastHiddenState);
    await encoder.release();
  }
  assert.ok(maxAbsDiff(states[0], states[1]) <= 1e-5, `in place vs appended: ${maxAbsDiff(states[0], states[1])}`);
  const splits = (o: Gemma2LoadOptions) => buildGemma2FromFolder(dir, { prefixCache: true, ...o }).graph.nodes.filter((n) => n.opType === 'Split').length;
  const webgpu = { name: 'stand-in', rejectsZeroSizedTensors: true, createSession: () => Promise.reject(new Error('unused')) };
  const layers = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).num_hidden_layers as number;
  // in place, each layer splits the probabilities at P (zero-length at P = 0); a backend refusing that gets the copies
  assert.equal(splits({}) - splits({ backend: webgpu }), layers);
});
