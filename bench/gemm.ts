// GEMM through the engine (Graph + linear with a weight bound as external data from a safetensors file, compiled,
// nodeBackend) against raw onnxruntime-node running a hand-made one-node MatMul model with the weight as an
// initializer, on the SANA-600M shapes [2048x1152]x[1152x1152] and [2048x1152]x[1152x5760], prepack on and off.
// Measurements are interleaved round by round so that load from other processes hits every variant alike; the
// process CPU time per run is printed too (with --threads 1 it is the steadier figure on a shared machine).
// Known cost: when a rank-3 linear is itself a graph output, ORT copies the final Reshape's result into the output
// buffer (~1.6 ms per 9 MiB here); inside a graph that Reshape is free (it aliases its input).
//
// Usage: npm run build && node dist/bench/gemm.js [--runs 15] [--threads N]

import * as fs from 'node:fs';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { ModelSession } from '../src/runtime/backend.js';
import { compileGraph } from '../src/runtime/compile.js';
import { defaultThreads, nodeBackend, ortSessionOptions } from '../src/runtime/node-backend.js';
import { benchCache, fillRandom, formatRate, median, peakRssMiB, timeWallCpu } from './common.js';

const { onnx } = onnxProto;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const RUNS = arg('runs', 15);
const THREADS = arg('threads', defaultThreads());
const M = 2048;
const K = 1152;

/** The weight [N, K] (PyTorch layout) in a safetensors file, written once. */
function weightFile(n: number): { file: string; weight: Float32Array } {
  const file = benchCache(`gemm-w-${n}x${K}.safetensors`);
  const weight = fillRandom(new Float32Array(n * K), n);
  if (!fs.existsSync(file)) writeSafetensors(file, { 'proj.weight': HostTensor.float32([n, K], weight) });
  return { file, weight };
}

/** The engine's model: y = linear(x, W) with W bound from the safetensors file; x rank 2 or rank 3 [1, M, K]. */
function engineModel(file: string, n: number, rank3: boolean) {
  const g = new Graph(`gemm_${n}`);
  const wb = new WeightBinder(g, WeightStore.open(file));
  const x = rank3 ? g.input('x', 'float32', ['B', 'N', K]) : g.input('x', 'float32', ['M', K]);
  g.output(G.linear(x, wb.get('proj.weight', [n, K])), 'y');
  wb.finish('gemm bench');
  return compileGraph(g);
}

/** A one-node MatMul ModelProto with the weight transposed to [K, N] as an inline initializer (no engine code). */
function rawMatMulModel(weight: Float32Array, n: number): Uint8Array {
  const wt = new Float32Array(K * n);
  for (let o = 0; o < n; o++) for (let i = 0; i < K; i++) wt[i * n + o] = weight[o * K + i];
  const model = onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'raw_matmul',
      node: [{ opType: 'MatMul', input: ['x', 'w'], output: ['y'], name: 'mm' }],
      initializer: [{ name: 'w', dataType: 1, dims: [K, n], rawData: new Uint8Array(wt.buffer) }],
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: M }, { dimValue: K }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: M }, { dimValue: n }] } } } }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

interface Variant {
  name: string;
  run: () => Promise<unknown>;
  release: () => Promise<void>;
  times: number[];
  cpu: number[];
}

async function engineVariant(name: string, session: ModelSession, x: HostTensor): Promise<Variant> {
  return { name, run: () => session.run({ x }), release: () => session.release(), times: [], cpu: [] };
}

async function main(): Promise<void> {
  console.log(`gemm bench: M=${M} K=${K}, ${THREADS} threads, ${RUNS} timed runs per variant (after 2 warm-ups), onnxruntime-node ${ort.env.versions.common}`);
  for (const n of [1152, 5760]) {
    const flop = 2 * M * K * n;
    const { file, weight } = weightFile(n);
    const xData = fillRandom(new Float32Array(M * K), 7);
    const variants: Variant[] = [];
    for (const prepack of [true, false]) {
      const opts = { threads: THREADS, prepack };
      const tag = prepack ? 'prepack on ' : 'prepack off';
      const raw = await ort.InferenceSession.create(rawMatMulModel(weight, n), ortSessionOptions(opts) as ort.InferenceSession.SessionOptions);
      const rawX = new ort.Tensor('float32', xData, [M, K]);
      variants.push({ name: `raw MatMul        ${tag}`, run: () => raw.run({ x: rawX }), release: () => raw.release(), times: [], cpu: [] });
      const s2 = await nodeBackend.createSession(engineModel(file, n, false), opts);
      variants.push(await engineVariant(`engine linear 2-D ${tag}`, s2, HostTensor.float32([M, K], xData)));
      const s3 = await nodeBackend.createSession(engineModel(file, n, true), opts);
      variants.push(await engineVariant(`engine linear 3-D ${tag}`, s3, HostTensor.float32([1, M, K], xData)));
    }
    for (const v of variants) for (let i = 0; i < 2; i++) await v.run();
    for (let r = 0; r < RUNS; r++) {
      for (const v of variants) {
        const t = await timeWallCpu(v.run);
        v.times.push(t.wall);
        v.cpu.push(t.cpu);
      }
    }
    console.log(`\n[${M}x${K}] x [${K}x${n}]  (${(flop / 1e9).toFixed(2)} GFLOP)`);
    const rawMedian: Record<string, { wall: number; cpu: number }> = {};
    const pct = (x: number, base: number) => `${(((x - base) / base) * 100).toFixed(1)}%`;
    for (const v of variants) {
      const med = median(v.times);
      const cpu = median(v.cpu);
      const tag = v.name.slice(-11);
      if (v.name.startsWith('raw')) rawMedian[tag] = { wall: med, cpu };
      const base = rawMedian[tag];
      const overhead = v.name.startsWith('raw') ? '' : `  overhead vs raw: wall ${pct(med, base.wall)}, cpu ${pct(cpu, base.cpu)}`;
      const spread = `min ${Math.min(...v.times).toFixed(1)} max ${Math.max(...v.times).toFixed(1)}`;
      console.log(`  ${v.name}  median ${med.toFixed(1)} ms  ${formatRate(flop, med)}  (${spread}; cpu median ${cpu.toFixed(1)} ms)${overhead}`);
    }
    for (const v of variants) await v.release();
  }
  console.log(`\npeak RSS ${peakRssMiB().toFixed(0)} MiB`);
}

await main();
