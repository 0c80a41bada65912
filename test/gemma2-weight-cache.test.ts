// The quantized-weight cache of the Gemma-2 loader: made once, memory-mapped afterwards, keyed by the checkpoint,
// and bit-for-bit the same model as quantizing in memory.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { SafetensorsFile, readSafetensors, writeSafetensors, writeSafetensorsStreamed } from '../src/io/safetensors.js';
import { Gemma2LoadOptions, buildGemma2FromFolder, loadGemma2 } from '../src/models/gemma2/loader.js';
import { dequantizeBlockwise, quantizeBlockwise } from '../src/nn/quantize-nbits.js';
import { defaultWeightCacheDirs } from '../src/nn/weight-cache.js';
import { Backend, SessionOptions } from '../src/runtime/backend.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { fixturePath, fixtureTensor } from './helpers/fixtures.js';

const threads = 1;
const fixture = 'gemma2_tiny';

/** Temporary folders of this file, removed at the end even when a test fails half-way. */
const temporary: string[] = [];
after(() => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

/** A private copy of the tiny checkpoint (so the default cache folder beside it may be written). */
function checkpointCopy(edit?: (w: Map<string, HostTensor>) => void): string {
  const dir = tempDir('gemma2-qc-');
  fs.copyFileSync(fixturePath(fixture, 'component', 'config.json'), path.join(dir, 'config.json'));
  const weights = readSafetensors(fixturePath(fixture, 'component', 'model.safetensors'));
  edit?.(weights);
  writeSafetensors(path.join(dir, 'model.safetensors'), weights);
  return dir;
}

async function encode(dir: string, options: Gemma2LoadOptions): Promise<{ out: Float32Array; cache?: { file: string; created: boolean } }> {
  const encoder = await loadGemma2(dir, { threads, ...options });
  const out = (await encoder.encode(fixtureTensor(fixture, 'inputs', 'input_ids'), fixtureTensor(fixture, 'inputs', 'attention_mask'))).lastHiddenState.data;
  await encoder.release();
  return { out: Float32Array.from(out), cache: encoder.weightCache };
}

function cacheFiles(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')) : [];
}

for (const quantization of ['int8', 'int4'] as const) {
  test(`${quantization}: the cache is written once beside the checkpoint, then reused unchanged; results equal in-memory quantization`, async () => {
    const dir = checkpointCopy();
    const cacheDir = path.join(dir, '.sana-ts-cache');
    const first = await encode(dir, { quantization });
    assert.equal(first.cache?.created, true);
    assert.equal(path.dirname(first.cache!.file), fs.realpathSync(cacheDir));
    assert.deepEqual(cacheFiles(cacheDir), [path.basename(first.cache!.file)]);
    const stat = fs.statSync(first.cache!.file);
    const second = await encode(dir, { quantization });
    assert.equal(second.cache?.created, false);
    assert.equal(second.cache?.file, first.cache!.file);
    const again = fs.statSync(first.cache!.file);
    assert.equal(again.mtimeMs, stat.mtimeMs, 'the cache file was not rewritten');
    assert.equal(again.ino, stat.ino, 'the cache file was not replaced');
    const inMemory = await encode(dir, { quantization, weightCacheDir: null });
    assert.equal(inMemory.cache, undefined);
    assert.deepEqual(first.out, inMemory.out);
    assert.deepEqual(second.out, inMemory.out);
    fs.rmSync(dir, { recursive: true });
  });
}

test('the cached graph maps every weight from the cache file (nothing held in JavaScript)', () => {
  const dir = checkpointCopy();
  const { graph, weightCache } = buildGemma2FromFolder(dir, { quantization: 'int4' });
  assert.equal(graph.memoryFiles.size, 0);
  const location = path.basename(weightCache!.file);
  assert.ok(graph.initializers.some((i) => i.external));
  for (const init of graph.initializers) {
    if (init.external) assert.equal(init.external.location, location, `${init.name} comes from ${init.external.location}`);
  }
  assert.equal(graph.externalDataFolder, path.dirname(weightCache!.file));
  fs.rmSync(dir, { recursive: true });
});

test('the cache file holds the block-quantized codes of the checkpoint under readable names', () => {
  const dir = checkpointCopy();
  const { weightCache } = buildGemma2FromFolder(dir, { quantization: 'int8' });
  const cache = SafetensorsFile.open(weightCache!.file);
  const source = readSafetensors(path.join(dir, 'model.safetensors'));
  const w = source.get('layers.1.mlp.up_proj.weight')!;
  const codes = cache.read('layers.1.mlp.up_proj.weight.codes');
  const scales = cache.read('layers.1.mlp.up_proj.weight.scales');
  const k = w.shape[1];
  const deq = dequantizeBlockwise({ bits: 8, blockSize: 32, n: w.shape[0], k, codes: codes as HostTensor<'uint8'>, scales: scales as HostTensor<'float32'> });
  const ref = w.toFloat32();
  let amax = 0;
  for (const v of ref) amax = Math.max(amax, Math.abs(v));
  // int8 blocks: every value within half a step (max |w| of its block / 127 / 2) of the original
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(deq[i] - ref[i]) <= amax / 254 + 1e-7, `element ${i}: ${deq[i]} vs ${ref[i]}`);
  assert.deepEqual([...cache.read('norm.weight').toFloat32()], [...source.get('norm.weight')!.toFloat32()]);
  assert.equal(cache.info('embed_tokens.weight.codes').dtype, 'uint8');
  fs.rmSync(dir, { recursive: true });
});

test('a changed checkpoint gets a new cache file (the stale one is removed) and its own results', async () => {
  const dir = checkpointCopy();
  const cacheDir = path.join(dir, '.sana-ts-cache');
  const before = await encode(dir, { quantization: 'int8' });
  // same header, same size, new values: only the modification time tells (as when a download is replaced)
  const weights = readSafetensors(path.join(dir, 'model.safetensors'));
  const down = weights.get('layers.0.mlp.down_proj.weight')!;
  weights.set('layers.0.mlp.down_proj.weight', HostTensor.float32(down.shape, down.toFloat32().map((v) => v * 3)));
  writeSafetensors(path.join(dir, 'model.safetensors'), weights);
  const future = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(dir, 'model.safetensors'), future, future);
  const after = await encode(dir, { quantization: 'int8' });
  assert.equal(after.cache?.created, true);
  assert.notEqual(after.cache?.file, before.cache?.file);
  assert.deepEqual(cacheFiles(cacheDir), [path.basename(after.cache!.file)]);
  assert.notDeepEqual(after.out, before.out);
  assert.deepEqual(after.out, (await encode(dir, { quantization: 'int8', weightCacheDir: null })).out);
  fs.rmSync(dir, { recursive: true });
});

test('int8 and int4 caches of one checkpoint live side by side', async () => {
  const dir = checkpointCopy();
  const a = await encode(dir, { quantization: 'int8' });
  const b = await encode(dir, { quantization: 'int4' });
  assert.notEqual(a.cache!.file, b.cache!.file);
  assert.equal(cacheFiles(path.join(dir, '.sana-ts-cache')).length, 2);
  assert.equal((await encode(dir, { quantization: 'int8' })).cache?.created, false);
  fs.rmSync(dir, { recursive: true });
});

test('a damaged cache file is rewritten', async () => {
  const dir = checkpointCopy();
  const weightCacheDir = tempDir('gemma2-qc-explicit-');
  const first = await encode(dir, { quantization: 'int4', weightCacheDir });
  assert.equal(path.dirname(first.cache!.file), fs.realpathSync(weightCacheDir));
  assert.ok(!fs.existsSync(path.join(dir, '.sana-ts-cache')), 'an explicit cache folder is the only one written');
  fs.truncateSync(first.cache!.file, fs.statSync(first.cache!.file).size - 100);
  const second = await encode(dir, { quantization: 'int4', weightCacheDir });
  assert.equal(second.cache?.created, true);
  assert.deepEqual(second.out, first.out);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(weightCacheDir, { recursive: true });
});

/** A bf16 copy of the tiny checkpoint (round to nearest even). */
function bf16Copy(): string {
  return checkpointCopy((w) => {
    for (const [k, v] of w) {
      const f = v.toFloat32();
      const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
      w.set(k, new HostTensor('bfloat16', v.shape, Uint16Array.from(bits, (b) => (b + 0x7fff + ((b >>> 16) & 1)) >>> 16)));
    }
  });
}

test('float32Cache: a bf16 checkpoint widened once into a cache file gives exactly the folded-cast result', async () => {
  const dir = bf16Copy();
  const folded = await encode(dir, {});
  assert.equal(folded.cache, undefined, 'no cache without float32Cache');
  assert.ok(!fs.existsSync(path.join(dir, '.sana-ts-cache')));
  const first = await encode(dir, { float32Cache: true });
  assert.equal(first.cache?.created, true);
  const second = await encode(dir, { float32Cache: true, prepack: false });
  assert.equal(second.cache?.created, false);
  assert.equal(second.cache?.file, first.cache?.file);
  assert.deepEqual(first.out, folded.out);
  assert.deepEqual(second.out, folded.out);
  fs.rmSync(dir, { recursive: true });
});

test('float32Cache: linear and norm weights are float32 widened exactly; the embedding keeps its bf16 bytes; no Cast of a weight', () => {
  const dir = bf16Copy();
  const { graph, weightCache } = buildGemma2FromFolder(dir, { float32Cache: true });
  const cache = SafetensorsFile.open(weightCache!.file);
  const source = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  const q = source.read('layers.0.self_attn.q_proj.weight');
  const wide = cache.read('layers.0.self_attn.q_proj.weight');
  assert.equal(wide.dtype, 'float32');
  // bf16 -> fp32 is exact: the high 16 bits of each float32 are the bf16 bits, the low 16 bits are zero
  const wideBits = new Uint32Array(wide.data.buffer, wide.data.byteOffset, wide.data.length);
  const srcBits = q.data as Uint16Array;
  for (let i = 0; i < srcBits.length; i++) assert.equal(wideBits[i], srcBits[i] << 16 >>> 0, `element ${i}`);
  assert.equal(cache.info('embed_tokens.weight').dtype, 'bfloat16');
  assert.deepEqual([...cache.read('embed_tokens.weight').data], [...source.read('embed_tokens.weight').data]);
  assert.equal(cache.info('norm.weight').dtype, 'float32');
  const initializerNames = new Set(graph.initializers.map((i) => i.name));
  const castOfWeight = graph.nodes.filter((n) => n.opType === 'Cast' && n.inputs.some((i) => initializerNames.has(i)));
  assert.deepEqual(castOfWeight, [], 'weights are used as stored in the cache');
  fs.rmSync(dir, { recursive: true });
});

test("float32Cache 'auto': a bf16 checkpoint gets the float32 cache (results as folded casts), a float32 one is used as it is", async () => {
  const dir = bf16Copy();
  const folded = await encode(dir, {});
  const encoder = await loadGemma2(dir, { threads, float32Cache: 'auto', noConstantFolding: true });
  assert.equal(encoder.weightCache?.created, true);
  assert.match(path.basename(encoder.weightCache!.file), /^gemma2-fp32-/);
  assert.deepEqual(encoder.loadNotices, []);
  const out = (await encoder.encode(fixtureTensor(fixture, 'inputs', 'input_ids'), fixtureTensor(fixture, 'inputs', 'attention_mask'))).lastHiddenState.data;
  await encoder.release();
  assert.deepEqual(Float32Array.from(out), folded.out);
  const again = await loadGemma2(dir, { threads, float32Cache: 'auto' });
  assert.equal(again.weightCache?.created, false, 'the second load maps the file the first wrote');
  await again.release();

  const fp32 = checkpointCopy();
  const plain = await loadGemma2(fp32, { threads, float32Cache: 'auto' });
  assert.equal(plain.weightCache, undefined, 'nothing to widen in a float32 checkpoint');
  assert.deepEqual(plain.loadNotices, []);
  assert.ok(!fs.existsSync(path.join(fp32, '.sana-ts-cache')));
  await plain.release();
});

test("float32Cache 'auto' without a writable cache folder: the casts stay in the graph, a notice names the folder, results unchanged", async () => {
  const dir = bf16Copy();
  const folded = await encode(dir, {});
  const readOnly = tempDir('gemma2-ro-');
  fs.chmodSync(readOnly, 0o555);
  const encoder = await loadGemma2(dir, { threads, float32Cache: 'auto', weightCacheDir: readOnly });
  assert.equal(encoder.weightCache, undefined);
  assert.equal(encoder.loadNotices.length, 1);
  assert.match(encoder.loadNotices[0], /no float32 weight cache/);
  assert.ok(encoder.loadNotices[0].includes(readOnly), encoder.loadNotices[0]);
  assert.match(encoder.loadNotices[0], /widened at every run/);
  const out = (await encoder.encode(fixtureTensor(fixture, 'inputs', 'input_ids'), fixtureTensor(fixture, 'inputs', 'attention_mask'))).lastHiddenState.data;
  await encoder.release();
  assert.deepEqual(Float32Array.from(out), folded.out);
  assert.deepEqual(fs.readdirSync(readOnly), []);
  fs.chmodSync(readOnly, 0o755);
});

test("float32Cache 'auto' with int8 quantization quantizes (no widening, no error); a bad value is refused", async () => {
  const dir = bf16Copy();
  const encoder = await loadGemma2(dir, { threads, float32Cache: 'auto', quantization: 'int8' });
  assert.match(path.basename(encoder.weightCache!.file), /^gemma2-int8-/);
  await encoder.release();
  await assert.rejects(loadGemma2(dir, { float32Cache: 'yes' as never }), /option float32Cache must be true, false or 'auto' \(got "yes"\)/);
});

test('float32Cache with weightCacheDir null or with quantization is refused with the options named', async () => {
  await assert.rejects(loadGemma2(fixturePath(fixture, 'component'), { float32Cache: true, weightCacheDir: null }), /float32Cache.*weightCacheDir/);
  await assert.rejects(loadGemma2(fixturePath(fixture, 'component'), { float32Cache: true, quantization: 'int8' }), /float32Cache and quantization 'int8' exclude each other/);
});

test('default cache folders: beside the checkpoint, then $XDG_CACHE_HOME/sana-ts or ~/.cache/sana-ts', () => {
  assert.deepEqual(defaultWeightCacheDirs('/models/gemma', { XDG_CACHE_HOME: '/var/cache/me' }), [
    '/models/gemma/.sana-ts-cache',
    '/var/cache/me/sana-ts',
  ]);
  // a relative XDG_CACHE_HOME is invalid by the XDG spec and ignored
  assert.deepEqual(defaultWeightCacheDirs('/models/gemma', { XDG_CACHE_HOME: 'rel' }), [
    '/models/gemma/.sana-ts-cache',
    path.join(os.homedir(), '.cache', 'sana-ts'),
  ]);
});

test('streamed safetensors: pieces land at their offsets; a writer with the wrong byte count leaves no file', () => {
  const dir = tempDir('st-stream-');
  const file = path.join(dir, 'x.safetensors');
  const q = quantizeBlockwise(HostTensor.float32([2, 32], Float32Array.from({ length: 64 }, (_, i) => i - 30)), 4, 32);
  writeSafetensorsStreamed(file, [
    { name: 'z.codes', dtype: 'uint8', shape: [2, 1, 16], write: (emit) => [0, 1].forEach((r) => emit(q.codes.data.subarray(r * 16, r * 16 + 16))) },
    { name: 'a.scales', dtype: 'float32', shape: [2], write: (emit) => emit(new Uint8Array(q.scales.data.buffer)) },
  ], { note: 'x' });
  const st = SafetensorsFile.open(file);
  assert.deepEqual([...st.read('z.codes').data], [...q.codes.data]);
  assert.deepEqual([...st.read('a.scales').toFloat32()], [...q.scales.data]);
  assert.equal(st.metadata.note, 'x');
  assert.ok(st.info('z.codes').fileOffset < st.info('a.scales').fileOffset, 'written in the given order');
  const bad = path.join(dir, 'bad.safetensors');
  assert.throws(
    () => writeSafetensorsStreamed(bad, [{ name: 't', dtype: 'float32', shape: [4], write: (emit) => emit(new Uint8Array(12)) }]),
    /tensor "t" emitted 12 bytes, its shape needs 16/,
  );
  assert.throws(
    () => writeSafetensorsStreamed(bad, [{ name: 't', dtype: 'uint8', shape: [4], write: (emit) => emit(new Uint8Array(5)) }]),
    /emitted more than its 4 bytes/,
  );
  assert.deepEqual(fs.readdirSync(dir), ['x.safetensors']);
  fs.rmSync(dir, { recursive: true });
});

test('lazyCasts: casts left in the graph run lazily without a memory arena; a float32 cache or int8 weights keep the defaults', async () => {
  const dir = bf16Copy();
  const asked: SessionOptions[] = [];
  const recording: Backend = { ...nodeBackend, createSession: (model, options) => (asked.push(options ?? {}), nodeBackend.createSession(model, options)) };
  const readOnly = tempDir('gemma2-ro-lazy-');
  fs.chmodSync(readOnly, 0o555);
  const cases: [string, Gemma2LoadOptions, boolean][] = [
    ['bf16 weights cast in the graph', { weightCacheDir: null }, true],
    ["float32Cache 'auto' without room (casts stay)", { float32Cache: 'auto', weightCacheDir: readOnly }, true],
    ['float32 cache mapped', { float32Cache: true }, false],
    ['int8 weights', { quantization: 'int8', integerGemm: true }, false],
  ];
  for (const [what, options, lazy] of cases) {
    asked.length = 0;
    const encoder = await loadGemma2(dir, { threads, lazyCasts: true, backend: recording, ...options });
    await encoder.release();
    assert.equal(asked.length, 1, what);
    assert.equal(asked[0].noConstantFolding, lazy ? true : undefined, `${what}: noConstantFolding`);
    assert.equal(asked[0].memoryArena, lazy ? false : undefined, `${what}: memoryArena`);
  }
  asked.length = 0;
  await (await loadGemma2(dir, { threads, backend: recording, weightCacheDir: null })).release();
  assert.equal(asked[0].noConstantFolding, undefined, 'without lazyCasts the casts are folded at load');
  fs.chmodSync(readOnly, 0o755);
});
