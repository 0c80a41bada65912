// Gemma-2-2B text encoder on a 300-token prompt: the REAL config with seeded random weights in a bf16 safetensors
// file (written once, ~5.2 GB, in chunks). One mode per process, so peak RSS is the mode's own:
//   node dist/bench/text-encoder.js --mode fp32|fp32-lazy|fp32-cached|int8|int8-gemm|int4|prefix-cache [--tokens 300] [--runs 3]
//     [--threads 2] [--weights DIR] [--out DIR] [--cache-dir DIR] [--[no-]prepack] [--no-floor] [--accuracy-level 0|4]
// fp32: the bf16->fp32 casts folded once at load, prepacked GEMMs (the loader's default);
// fp32-lazy: bf16 weights cast inside the graph at every run (ConstantFolding off: no fp32 copy is kept);
// fp32-cached: the weights widened once into a float32 cache file (9.3 GB) that later loads memory-map (used in
// place: no prepacking unless --prepack);
// int8-gemm: per-channel int8 weights x per-token int8 activations through MatMulInteger (integerGemm);
// int8 / int4: weight-only block-32 quantization (MatMulNBits) from the quantized-weight cache (made at the first
// load, memory-mapped afterwards); load time is reported separately for the run that made the cache.
// prefix-cache: the instruction prefix cache (src/models/gemma2/prefix-cache.ts) on one session of the cached
// graph (fp32, casts folded at load unless --lazy): the REAL tokenizer's instruction + a short prompt, encoded
// uncached (the whole trimmed sequence, empty past) and cached (the prompt's tokens only) in alternation; prints
// both times, their ratio, the one-off prefix cost and the largest difference between the two outputs.
// --quant int8-gemm: the same on the integer-GEMM int8 encoder; --lazy: bf16 weights cast at every run;
// --float32-cache: the widened float32 copy mapped in place (what the one-shot pipeline runs); --no-arena: ORT's memory arena off.
// --layers N: real widths with N decoder layers (default 26 = Gemma-2-2B; fewer to fit a shared machine).
// --weights: checkpoint folder (default .bench-cache/gemma2-2b-random, written if missing); --out: where each
// mode's last hidden state goes (quantized modes report cosine similarity to the fp32 one found there);
// --cache-dir: weight cache folder (default: the loader's). The machine is shared: the process CPU time
// of each run and the load average are printed next to wall time, and after each model run the same process times
// the GEMM floor (see gemmFloorSession): model/floor is the figure to compare across busy and idle machines.
// ref: SANA.md §4.5

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { ModelSession } from '../src/runtime/backend.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { GEMMA2_2B } from '../src/models/gemma2/config.js';
import { Gemma2LoadOptions, loadGemma2 } from '../src/models/gemma2/loader.js';
import { emptyPast } from '../src/models/gemma2/prefix-cache.js';
import { preparePrompts } from '../src/text/prompt-encoding.js';
import { GemmaTokenizer } from '../src/text/tokenizer.js';
import { arg } from './common.js';


const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const LAYERS = Number(arg('layers', String(GEMMA2_2B.numHiddenLayers)));
/** The benchmarked config: Gemma-2-2B, possibly with fewer layers (--layers). */
const C = { ...GEMMA2_2B, numHiddenLayers: LAYERS };
const cacheDir = path.resolve(
  arg('weights', path.join(root, '.bench-cache', LAYERS === GEMMA2_2B.numHiddenLayers ? 'gemma2-2b-random' : `gemma2-2b-random-L${LAYERS}`)),
);
const outDir = path.resolve(arg('out', path.join(root, '.bench-cache', 'gemma2-2b-results')));
const ROOFLINE_GFLOPS = 450;

type Mode = 'fp32' | 'fp32-lazy' | 'fp32-cached' | 'int8' | 'int8-gemm' | 'int4' | 'prefix-cache';
const MODES: readonly Mode[] = ['fp32', 'fp32-lazy', 'fp32-cached', 'int8', 'int8-gemm', 'int4', 'prefix-cache'];


/** Tensor names and shapes of Gemma2Model at the 2B config. */
function gemma2Shapes(): Array<[string, number[]]> {
  const c = C;
  const out: Array<[string, number[]]> = [['embed_tokens.weight', [c.vocabSize, c.hiddenSize]]];
  const H = c.hiddenSize;
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `layers.${i}`;
    out.push(
      [`${p}.input_layernorm.weight`, [H]],
      [`${p}.post_attention_layernorm.weight`, [H]],
      [`${p}.pre_feedforward_layernorm.weight`, [H]],
      [`${p}.post_feedforward_layernorm.weight`, [H]],
      [`${p}.self_attn.q_proj.weight`, [c.numAttentionHeads * c.headDim, H]],
      [`${p}.self_attn.k_proj.weight`, [c.numKeyValueHeads * c.headDim, H]],
      [`${p}.self_attn.v_proj.weight`, [c.numKeyValueHeads * c.headDim, H]],
      [`${p}.self_attn.o_proj.weight`, [H, c.numAttentionHeads * c.headDim]],
      [`${p}.mlp.gate_proj.weight`, [c.intermediateSize, H]],
      [`${p}.mlp.up_proj.weight`, [c.intermediateSize, H]],
      [`${p}.mlp.down_proj.weight`, [H, c.intermediateSize]],
    );
  }
  out.push(['norm.weight', [H]]);
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Writes config.json and a bf16 model.safetensors of seeded uniform weights (std 0.02; norm offsets +-0.1). */
function writeRandomCheckpoint(): void {
  const file = path.join(cacheDir, 'model.safetensors');
  if (fs.existsSync(file)) return;
  fs.mkdirSync(cacheDir, { recursive: true });
  const shapes = gemma2Shapes();
  const total = shapes.reduce((p, [, s]) => p + s.reduce((a, b) => a * b, 1) * 2, 0);
  const free = fs.statfsSync(cacheDir);
  if (free.bavail * free.bsize < total * 1.2) throw new Error(`not enough free disk for ${(total / 1e9).toFixed(1)} GB of weights in ${cacheDir}`);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const len = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeSync(fd, lenBuf);
  fs.writeSync(fd, Buffer.from(json));
  let state = 0x9e3779b9;
  const chunk = new Uint16Array(1 << 22);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (const [name, shape] of shapes) {
    const amplitude = shape.length === 1 ? 0.1 : 0.02 * Math.sqrt(3);
    let left = shape.reduce((a, b) => a * b, 1);
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      for (let i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        f32[0] = ((state >>> 0) / 4294967296 - 0.5) * 2 * amplitude;
        chunk[i] = u32[0] >>> 16;
      }
      fs.writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 2));
      left -= n;
    }
    if (name === 'embed_tokens.weight') console.log('  embedding written');
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  const c = C;
  const config = {
    architectures: ['Gemma2Model'],
    model_type: 'gemma2',
    torch_dtype: 'bfloat16',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    num_key_value_heads: c.numKeyValueHeads,
    head_dim: c.headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    query_pre_attn_scalar: c.queryPreAttnScalar,
    attn_logit_softcapping: c.attnLogitSoftcapping,
    final_logit_softcapping: 30.0,
    sliding_window: c.slidingWindow,
    attention_bias: false,
    pad_token_id: 0,
    bos_token_id: 2,
    eos_token_id: 1,
  };
  fs.writeFileSync(path.join(cacheDir, 'config.json'), JSON.stringify(config, null, 2));
}

/** Multiply-adds x 2 of one forward pass over T tokens (projections, MLP, attention scores and values). */
function forwardFlops(t: number): number {
  const c = C;
  const H = c.hiddenSize;
  const qDim = c.numAttentionHeads * c.headDim;
  const kvDim = c.numKeyValueHeads * c.headDim;
  const perToken = H * qDim * 2 + H * kvDim * 2 + 3 * H * c.intermediateSize;
  const attention = 2 * c.numAttentionHeads * t * t * c.headDim;
  return 2 * c.numHiddenLayers * (perToken * t + attention);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/**
 * The GEMM floor: one decoder layer's seven projections alone (float32 weights, prepacked, random), run once per
 * layer. Timed right after each model run, it shows what the machine's load allows at that moment, so the model's
 * time divided by the floor's is the model's overhead over pure GEMM, a figure that survives a busy machine.
 */
async function gemmFloorSession(tokens: number, threads: number): Promise<ModelSession> {
  const c = GEMMA2_2B;
  const H = c.hiddenSize;
  const g = new Graph('gemm_floor');
  let seed = 1;
  const weight = (name: string, out: number, inF: number) => {
    const data = new Float32Array(out * inF);
    for (let i = 0; i < data.length; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      data[i] = (seed / 4294967296 - 0.5) * 0.04;
    }
    return g.inMemory(name, HostTensor.float32([out, inF], data));
  };
  const x = g.input('x', 'float32', [tokens, H]);
  const q = G.linear(x, weight('q', c.numAttentionHeads * c.headDim, H));
  const k = G.linear(x, weight('k', c.numKeyValueHeads * c.headDim, H));
  const v = G.linear(x, weight('v', c.numKeyValueHeads * c.headDim, H));
  const o = G.linear(q, weight('o', H, c.numAttentionHeads * c.headDim));
  const gate = G.linear(o, weight('gate', c.intermediateSize, H));
  const up = G.linear(o, weight('up', c.intermediateSize, H));
  g.output(G.linear(G.mul(gate, up), weight('down', H, c.intermediateSize)), 'y');
  g.output(k, 'k_out');
  g.output(v, 'v_out');
  return nodeBackend.createSession(compileGraph(g), { threads });
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1e6;
}

function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const mode = arg('mode', 'fp32') as Mode;
  const tokens = Number(arg('tokens', '300'));
  const runs = Number(arg('runs', '3'));
  const threads = Number(arg('threads', '2'));
  if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')} (got ${mode})`);
  writeRandomCheckpoint();
  if (process.argv.includes('--write-only')) return;
  if (mode === 'prefix-cache') return prefixCacheBench(runs, threads);
  const options: Gemma2LoadOptions = { threads };
  if (mode === 'fp32-lazy') options.noConstantFolding = true;
  if (mode === 'fp32-cached') options.float32Cache = true;
  if (process.argv.includes('--no-prepack')) options.prepack = false;
  if (process.argv.includes('--prepack')) options.prepack = true;
  const prepacked = options.prepack ?? mode !== 'fp32-cached'; // the loader maps a float32 cache in place by default
  if (mode === 'int8' || mode === 'int4') options.quantization = mode;
  if (mode === 'int8-gemm') Object.assign(options, { quantization: 'int8', integerGemm: true });
  if (process.argv.includes('--accuracy-level')) options.quantAccuracyLevel = Number(arg('accuracy-level', '4')) === 0 ? 0 : 4;
  if (process.argv.includes('--cache-dir')) options.weightCacheDir = path.resolve(arg('cache-dir', ''));
  const load0 = performance.now();
  const loadCpu0 = process.cpuUsage();
  const encoder = await loadGemma2(cacheDir, options);
  const loadS = (performance.now() - load0) / 1000;
  const loadCpuS = cpuSeconds(loadCpu0);
  const rssAfterLoad = (process.resourceUsage().maxRSS * 1024) / 1e9;
  // a prompt-like id sequence: BOS then ids spread over the vocabulary
  const ids = HostTensor.int64([1, tokens], Array.from({ length: tokens }, (_, i) => (i === 0 ? 2 : 1000 + ((i * 7919) % 250000))));
  const mask = HostTensor.int64([1, tokens], new Array(tokens).fill(1));
  const floorX = HostTensor.float32([tokens, GEMMA2_2B.hiddenSize], new Float32Array(tokens * GEMMA2_2B.hiddenSize).fill(0.01));
  const times: number[] = [];
  const cpus: number[] = [];
  const floorTimes: number[] = [];
  const floorCpus: number[] = [];
  let last: Float32Array | undefined;
  let floor: ModelSession | null = null;
  let modelRssGB = 0;
  for (let r = 0; r < runs + 1; r++) {
    let t0 = performance.now();
    let c0 = process.cpuUsage();
    last = (await encoder.encode(ids, mask)).lastHiddenState.data;
    if (r > 0) {
      times.push((performance.now() - t0) / 1000);
      cpus.push(cpuSeconds(c0));
    } else {
      // the model's own peak (load + first run), before the floor session adds its weights
      modelRssGB = (process.resourceUsage().maxRSS * 1024) / 1e9;
      if (!process.argv.includes('--no-floor')) floor = await gemmFloorSession(tokens, threads);
    }
    if (!floor) continue;
    t0 = performance.now();
    c0 = process.cpuUsage();
    for (let layer = 0; layer < C.numHiddenLayers; layer++) await floor.run({ x: floorX });
    if (r > 0) {
      floorTimes.push((performance.now() - t0) / 1000);
      floorCpus.push(cpuSeconds(c0));
    }
  }
  await encoder.release();
  if (floor) await floor.release();
  const median = medianOf(times);
  const cpu = medianOf(cpus);
  const gflop = forwardFlops(tokens) / 1e9;
  const rssGB = (process.resourceUsage().maxRSS * 1024) / 1e9;
  fs.mkdirSync(outDir, { recursive: true });
  const outFile = path.join(outDir, `last_hidden_state.${mode}.${tokens}.f32`);
  fs.writeFileSync(outFile, new Uint8Array(last!.buffer, last!.byteOffset, last!.byteLength));
  let similarity = '';
  const ref = ['fp32', 'fp32-lazy']
    .filter((m) => m !== mode)
    .map((m) => path.join(outDir, `last_hidden_state.${m}.${tokens}.f32`))
    .find((f) => fs.existsSync(f));
  if (ref) {
    const b = fs.readFileSync(ref);
    similarity = `, cosine to ${path.basename(ref).split('.')[1]} ${cosine(last!, new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)).toFixed(6)}`;
  }
  let floorNote = '';
  if (floor) {
    const fw = medianOf(floorTimes);
    const fc = medianOf(floorCpus);
    floorNote =
      `; GEMM floor (the ${C.numHiddenLayers} layers' projections alone, fp32 prepacked) ${fw.toFixed(3)} s wall, ${fc.toFixed(3)} s cpu: ` +
      `model/floor ${(median / fw).toFixed(2)} by wall, ${(cpu / fc).toFixed(2)} by cpu`;
  }
  console.log(
    `gemma2-2b ${mode}${prepacked ? '' : ' (no prepack)'}${options.quantAccuracyLevel === 0 ? ' (accuracy level 0)' : ''} T=${tokens} threads=${threads}: ` +
      `load ${loadS.toFixed(2)} s (cpu ${loadCpuS.toFixed(2)} s, peak RSS after load ${rssAfterLoad.toFixed(2)} GB); ` +
      `median ${median.toFixed(3)} s wall, ${cpu.toFixed(3)} s cpu (runs ${times.map((t) => t.toFixed(3)).join(', ')}); ` +
      `${gflop.toFixed(0)} GFLOP, ${(gflop / median).toFixed(0)} GFLOP/s by wall = ${((100 * gflop) / median / ROOFLINE_GFLOPS).toFixed(0)}% ` +
      `of ${ROOFLINE_GFLOPS}, ${((gflop * threads) / cpu).toFixed(0)} GFLOP/s by cpu/threads; peak RSS ${modelRssGB.toFixed(2)} GB (process with the floor ${rssGB.toFixed(2)} GB)${similarity}; ` +
      `load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores${floorNote}`,
  );
}

/** Max |a - b| and cosine of two equally long arrays. */
function difference(a: Float32Array, b: Float32Array): { maxAbs: number; cosine: number } {
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
  return { maxAbs, cosine: cosine(a, b) };
}

async function prefixCacheBench(runs: number, threads: number): Promise<void> {
  const prompt = arg('prompt', 'A cat holding a sign that says Hello World');
  const options: Gemma2LoadOptions = { threads, prefixCache: true, weightCacheDir: benchPrefixDir() };
  if (process.argv.includes('--lazy')) Object.assign(options, { noConstantFolding: true, memoryArena: false });
  // --float32-cache: the one-shot pipeline's mode (the float32 copy mapped in place, no prepacking, lazyCasts as the
  // pipeline passes it: no casts are left, so the session keeps its memory arena)
  if (process.argv.includes('--float32-cache')) Object.assign(options, { float32Cache: true, lazyCasts: true });
  // --no-arena: without ORT's memory arena (what the one-shot pipeline used before lazyCasts, measured against it)
  if (process.argv.includes('--no-arena')) options.memoryArena = false;
  // --quant int8-gemm: the same comparison on the integer-GEMM int8 encoder (a quarter of the weight bytes per run)
  if (arg('quant', 'none') === 'int8-gemm') Object.assign(options, { quantization: 'int8', integerGemm: true });
  if (process.argv.includes('--no-prepack')) options.prepack = false;
  const tok = GemmaTokenizer.fromFolder(path.join(root, 'node_modules', '@lenml', 'tokenizer-gemma2', 'models'));
  const prepared = preparePrompts(prompt, {}, tok);
  // what encodePrompts hands the encoder for a short prompt: the sequence up to its last real token (trimPadding)
  const mask = prepared.prompt.attentionMask.data;
  const keep = mask.reduce((n, m, i) => (m !== 0n ? i + 1 : n), 1);
  const ids = HostTensor.int64([1, keep], prepared.prompt.inputIds.data.slice(0, keep));
  const ones = HostTensor.int64([1, keep], new Array(keep).fill(1));
  const P = prepared.instructionPrefix.length;
  // the prefix: a file from an earlier run of this benchmark is removed first, so its computation is timed too;
  // then a fresh encoder (one session at a time: the peak is one model's) reads it back
  for (const f of fs.existsSync(options.weightCacheDir!) ? fs.readdirSync(options.weightCacheDir!) : []) {
    if (f.startsWith('gemma2-prefix-')) fs.rmSync(path.join(options.weightCacheDir!, f));
  }
  const first = await loadGemma2(cacheDir, options);
  let t0 = performance.now();
  const state = (await first.cachePrefix(prepared.instructionPrefix))!;
  const prefixS = (performance.now() - t0) / 1000;
  await first.release();
  const load0 = performance.now();
  const profile = process.argv.includes('--profile') ? { profilePrefix: arg('profile', 'gemma2-prefix') } : {};
  const encoder = await loadGemma2(cacheDir, { ...options, ...profile });
  const loadS = (performance.now() - load0) / 1000;
  t0 = performance.now();
  const reread = (await encoder.cachePrefix(prepared.instructionPrefix))!;
  const rereadS = (performance.now() - t0) / 1000;
  const uncached = async () =>
    (await encoder.session.run({ input_ids: ids, attention_mask: ones, ...emptyPast(encoder.config) }, ['last_hidden_state'])).last_hidden_state.data as Float32Array;
  const cached = async () => (await encoder.encode(ids, ones)).lastHiddenState.data;
  const times = { uncached: [] as number[], cached: [] as number[] };
  const cpu = { uncached: [] as number[], cached: [] as number[] };
  let a: Float32Array = new Float32Array(0);
  let b: Float32Array = new Float32Array(0);
  for (let r = 0; r < runs + 1; r++) {
    t0 = performance.now();
    let c0 = process.cpuUsage();
    a = await uncached();
    const tu = (performance.now() - t0) / 1000;
    const cu = cpuSeconds(c0);
    t0 = performance.now();
    c0 = process.cpuUsage();
    b = await cached();
    const tc = (performance.now() - t0) / 1000;
    const cc = cpuSeconds(c0);
    if (r > 0) {
      times.uncached.push(tu);
      times.cached.push(tc);
      cpu.uncached.push(cu);
      cpu.cached.push(cc);
    }
  }
  const d = difference(a, b);
  const mu = medianOf(times.uncached);
  const mc = medianOf(times.cached);
  const cu = medianOf(cpu.uncached);
  const cc = medianOf(cpu.cached);
  const n = keep - P;
  // the cached run's work: the n new tokens' projections plus their attention over all keep positions
  const cachedFlop = (forwardFlops(keep) - forwardFlops(P)) / 1e9;
  const rss = (process.resourceUsage().maxRSS * 1024) / 1e9;
  (encoder.session as { endProfiling?: () => void }).endProfiling?.();
  await encoder.release();
  console.log(
    `gemma2-2b widths, ${C.numHiddenLayers} layers, ${options.integerGemm ? 'int8 integer GEMM' : options.float32Cache ? 'fp32 cache mapped (the one-shot pipeline)' : options.noConstantFolding ? 'bf16 cast at run time' : 'fp32 (casts folded at load)'}, threads=${threads}: ` +
      `load ${loadS.toFixed(2)} s; prompt ${JSON.stringify(prompt)} = ${keep} tokens after trimming, of which ${P} the cached instruction prefix, ${n} run when cached\n` +
      `  prefix: computed in ${prefixS.toFixed(3)} s (${state.file ? `written to ${path.basename(state.file)}` : `not persisted: ${state.persistError}`}), ` +
      `read back by a fresh encoder in ${rereadS.toFixed(3)} s (computed ${reread.computed}); ${((state.keys.length * 2 * state.keys[0].size * 4) / 1e6).toFixed(1)} MB of keys/values\n` +
      `  uncached ${mu.toFixed(3)} s wall, ${cu.toFixed(3)} s cpu (runs ${times.uncached.map((t) => t.toFixed(3)).join(', ')}; ${(forwardFlops(keep) / 1e9 / mu).toFixed(0)} GFLOP/s = ${((100 * forwardFlops(keep)) / 1e9 / mu / ROOFLINE_GFLOPS).toFixed(0)}% of ${ROOFLINE_GFLOPS})\n` +
      `  cached   ${mc.toFixed(3)} s wall, ${cc.toFixed(3)} s cpu (runs ${times.cached.map((t) => t.toFixed(3)).join(', ')}; ${(cachedFlop / mc).toFixed(0)} GFLOP/s)\n` +
      `  speedup ${(mu / mc).toFixed(2)}x by wall, ${(cu / cc).toFixed(2)}x by cpu; max |cached - uncached| ${d.maxAbs.toExponential(2)} (cosine ${d.cosine.toFixed(9)}); peak RSS ${rss.toFixed(2)} GB; ` +
      `load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  );
}

/** Prefix files of the benchmark go beside its checkpoint's cache, not the user's cache. */
function benchPrefixDir(): string {
  return path.join(cacheDir, '.sana-ts-cache');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
