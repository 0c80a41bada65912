// How a Gemma-2 MLP projection ([300 x 2304] x [2304 x 9216], one prompt through gate_proj) runs under each way the
// text encoder can hold its weights: float32 external data (prepacked copy or memory-mapped), bf16 with a Cast at
// every run, bf16 with the Cast folded at load, and weight-only int8 / int4 MatMulNBits (prepacked or not).
// Variants are interleaved round by round so that load from other processes hits each alike; process CPU time per
// run is printed next to wall time (with --threads 1 it is the steadier figure on a shared machine).
//
// Usage: npm run build && node dist/bench/linear-variants.js [--runs 9] [--threads 1] [--m 300]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { quantizeBlockwise } from '../src/nn/quantize-nbits.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { ModelSession, SessionOptions } from '../src/runtime/backend.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { benchCache, fillRandom, formatRate, median, peakRssMiB, timeWallCpu } from './common.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const RUNS = arg('runs', 9);
const THREADS = arg('threads', 1);
const M = arg('m', 300);
const K = 2304;
const N = 9216;

function toBf16(a: Float32Array): Uint16Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return out;
}

function files(): { f32: string; f32kn: string; bf16: string; weight: Float32Array } {
  const weight = fillRandom(new Float32Array(N * K), 11).map((v) => v * 0.04);
  const f32 = benchCache(`linear-w-${N}x${K}.f32.safetensors`);
  const bf16 = benchCache(`linear-w-${N}x${K}.bf16.safetensors`);
  if (!fs.existsSync(f32)) writeSafetensors(f32, { 'proj.weight': HostTensor.float32([N, K], weight) });
  if (!fs.existsSync(bf16)) writeSafetensors(bf16, { 'proj.weight': new HostTensor('bfloat16', [N, K], toBf16(weight)) });
  const f32kn = benchCache(`linear-w-${K}x${N}.f32.safetensors`);
  if (!fs.existsSync(f32kn)) {
    const t = new Float32Array(K * N);
    for (let o = 0; o < N; o++) for (let i = 0; i < K; i++) t[i * N + o] = weight[o * K + i];
    writeSafetensors(f32kn, { 'proj.weight': HostTensor.float32([K, N], t) });
  }
  return { f32, f32kn, bf16, weight };
}

function denseModel(file: string) {
  const g = new Graph('dense');
  const wb = new WeightBinder(g, WeightStore.open(file));
  g.output(G.linear(g.input('x', 'float32', ['M', K]), wb.get('proj.weight', [N, K])), 'y');
  wb.finish('linear bench');
  return compileGraph(g);
}

/** The weight stored transposed [K, N] (what a one-time float32 cache could hold): a plain MatMul, no transB. */
function transposedModel(file: string) {
  const g = new Graph('dense_kn');
  const wb = new WeightBinder(g, WeightStore.open(file));
  g.output(G.matmul(g.input('x', 'float32', ['M', K]), wb.get('proj.weight', [K, N])), 'y');
  wb.finish('linear bench');
  return compileGraph(g);
}

function nbitsModel(weight: Float32Array, bits: 4 | 8, accuracyLevel: 0 | 4) {
  const q = quantizeBlockwise(HostTensor.float32([N, K], weight), bits, 32);
  const g = new Graph('nbits');
  const y = G.matMulNBits(g.input('x', 'float32', ['M', K]), g.inMemory('codes', q.codes), g.inMemory('scales', q.scales), {
    k: K,
    n: N,
    bits,
    blockSize: 32,
    accuracyLevel,
  });
  g.output(y, 'y');
  return compileGraph(g);
}

interface Variant {
  name: string;
  session: ModelSession;
  times: number[];
  cpu: number[];
  createMs: number;
  rssAfter: number;
}

async function main(): Promise<void> {
  const { f32, f32kn, bf16, weight } = files();
  const flop = 2 * M * K * N;
  const x = HostTensor.float32([M, K], fillRandom(new Float32Array(M * K), 3));
  const specs: Array<[string, () => ReturnType<typeof denseModel>, SessionOptions]> = [
    ['f32 prepacked        ', () => denseModel(f32), { prepack: true }],
    ['f32 mmap (no prepack)', () => denseModel(f32), { prepack: false }],
    ['f32 [K,N] prepacked  ', () => transposedModel(f32kn), { prepack: true }],
    ['f32 [K,N] mmap       ', () => transposedModel(f32kn), { prepack: false }],
    ['bf16 cast every run  ', () => denseModel(bf16), { noConstantFolding: true }],
    ['bf16 folded, prepack ', () => denseModel(bf16), { prepack: true }],
    ['bf16 folded, no pack ', () => denseModel(bf16), { prepack: false }],
    ['int8 acc4 prepacked  ', () => nbitsModel(weight, 8, 4), { prepack: true }],
    ['int8 acc4 no prepack ', () => nbitsModel(weight, 8, 4), { prepack: false }],
    ['int4 acc4 prepacked  ', () => nbitsModel(weight, 4, 4), { prepack: true }],
    ['int4 acc4 no prepack ', () => nbitsModel(weight, 4, 4), { prepack: false }],
    ['int8 acc0 prepacked  ', () => nbitsModel(weight, 8, 0), { prepack: true }],
    ['int4 acc0 prepacked  ', () => nbitsModel(weight, 4, 0), { prepack: true }],
  ];
  const variants: Variant[] = [];
  for (const [name, model, opts] of specs) {
    const compiled = model();
    const t0 = performance.now();
    const session = await nodeBackend.createSession(compiled, { threads: THREADS, ...opts });
    variants.push({ name, session, times: [], cpu: [], createMs: performance.now() - t0, rssAfter: peakRssMiB() });
  }
  for (const v of variants) await v.session.run({ x });
  for (let r = 0; r < RUNS; r++) {
    for (const v of variants) {
      const t = await timeWallCpu(() => v.session.run({ x }));
      v.times.push(t.wall);
      v.cpu.push(t.cpu);
    }
  }
  console.log(`linear variants: [${M}x${K}] x [${K}x${N}] (${(flop / 1e9).toFixed(2)} GFLOP), ${THREADS} threads, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const v of variants) {
    const wall = median(v.times);
    const cpu = median(v.cpu);
    console.log(
      `  ${v.name} wall ${wall.toFixed(1)} ms  cpu ${cpu.toFixed(1)} ms  ${formatRate(flop, cpu / THREADS)} by cpu  (create ${v.createMs.toFixed(0)} ms)`,
    );
  }
  for (const v of variants) await v.session.release();
  console.log(`peak RSS ${peakRssMiB().toFixed(0)} MiB`);
}

await main();
