// Which ONNX Runtime int8 path runs a SANA-600M linear layer fastest on this CPU (AVX-512 VNNI): y = x W^T + b with
// x [M, K] float32, W [N, K], against float32 Gemm (prepacked). Variants, interleaved round by round:
//   fp32         Gemm, transB, bias fused
//   dq-tensor    DynamicQuantizeLinear (per-tensor uint8) + MatMulInteger (u8 x s8, per-column int8 weights) +
//                Cast + Mul (x scale * weight scale) + Add bias: ORT's optimizer may fuse this into
//                com.microsoft DynamicQuantizeMatMul / MatMulIntegerToFloat
//   dq-token     per-token symmetric scales (ReduceMax |x| per row / 127), QuantizeLinear per-axis to uint8 with zero
//                point 128, MatMulInteger (scalar zero point 128), Cast, Mul row scale, Mul column scale, Add bias
//   dqmm         com.microsoft DynamicQuantizeMatMul (the fused op directly; per-tensor activation quantization)
// Also prints each variant's cosine to fp32. ref: SANA.md §1.4 (the linear layers of a block)
//
//   node dist/bench/int8-linear.js [--m 512] [--shapes 1152x1152,1152x5760,2880x1152] [--runs 9] [--threads 2]

import * as os from 'node:os';
import { Graph, Tensor } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { ModelSession } from '../src/runtime/backend.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { arg, fillRandom, median, peakRssMiB, timeWallCpu } from './common.js';

const M = Number(arg('m', '512'));
const RUNS = Number(arg('runs', '9'));
const THREADS = Number(arg('threads', '2'));
const SHAPES = arg('shapes', '1152x1152,1152x5760,2880x1152').split(',').map((s) => s.split('x').map(Number) as [number, number]);

/** Per-output-channel symmetric int8: codes [K, N] (MatMulInteger's B layout) and scales [N]. */
function quantizePerChannel(w: Float32Array, n: number, k: number): { codes: Int8Array; scales: Float32Array } {
  const codes = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let amax = 0;
    for (let i = 0; i < k; i++) amax = Math.max(amax, Math.abs(w[r * k + i]));
    const s = amax / 127 || 1;
    scales[r] = s;
    for (let i = 0; i < k; i++) codes[i * n + r] = Math.max(-127, Math.min(127, Math.round(w[r * k + i] / s)));
  }
  return { codes, scales };
}

async function build(variant: string, k: number, n: number, w: Float32Array, bias: Float32Array): Promise<ModelSession> {
  const g = new Graph(`int8_${variant}`);
  const x = g.input('x', 'float32', [M, k]);
  let y: Tensor;
  if (variant === 'fp32') {
    y = g.node1('Gemm', [x, g.inMemory('w', HostTensor.float32([n, k], w)), g.inMemory('b', HostTensor.float32([n], bias))], 'float32', [M, n], { transB: 1 });
  } else {
    const { codes, scales } = quantizePerChannel(w, n, k);
    const wq = g.inMemory('wq', new HostTensor('int8', [k, n], new Uint8Array(codes.buffer)));
    const wZero = g.constant(new HostTensor('int8', [], Uint8Array.of(0)), 'w_zero');
    const wScale = g.inMemory('w_scale', HostTensor.float32([n], scales));
    const b = g.inMemory('b', HostTensor.float32([n], bias));
    if (variant === 'dq-tensor') {
      const [xq, xs, xz] = g.node('DynamicQuantizeLinear', [x], [
        { dtype: 'uint8', shape: [M, k] },
        { dtype: 'float32', shape: [] },
        { dtype: 'uint8', shape: [] },
      ]);
      const acc = g.node1('MatMulInteger', [xq, wq, xz, wZero], 'int32', [M, n]);
      const f = g.node1('Cast', [acc], 'float32', [M, n], { to: 1 });
      const scale = g.node1('Mul', [xs, wScale], 'float32', [n]);
      y = g.node1('Add', [g.node1('Mul', [f, scale], 'float32', [M, n]), b], 'float32', [M, n]);
    } else if (variant === 'dq-token') {
      const amax = g.node1('ReduceMax', [g.node1('Abs', [x], 'float32', [M, k]), g.int64s([1])], 'float32', [M, 1], { keepdims: 1 });
      const rowScale = g.node1('Max', [g.node1('Div', [amax, g.scalar(127)], 'float32', [M, 1]), g.scalar(1e-30)], 'float32', [M, 1]);
      const flatScale = g.node1('Reshape', [rowScale, g.int64s([M])], 'float32', [M]);
      const zero = g.constant(new HostTensor('uint8', [], Uint8Array.of(128)), 'x_zero');
      const xq = g.node1('QuantizeLinear', [x, flatScale, g.node1('Expand', [zero, g.int64s([M])], 'uint8', [M])], 'uint8', [M, k], { axis: 0 });
      const acc = g.node1('MatMulInteger', [xq, wq, zero, wZero], 'int32', [M, n]);
      const f = g.node1('Cast', [acc], 'float32', [M, n], { to: 1 });
      y = g.node1('Add', [g.node1('Mul', [g.node1('Mul', [f, rowScale], 'float32', [M, n]), wScale], 'float32', [M, n]), b], 'float32', [M, n]);
    } else if (variant === 'dqmm') {
      y = g.node1('DynamicQuantizeMatMul', [x, wq, wScale, wZero, b], 'float32', [M, n], {}, 'com.microsoft');
    } else {
      throw new Error(`unknown variant ${variant}`);
    }
  }
  g.output(y, 'y');
  return nodeBackend.createSession(compileGraph(g), { threads: THREADS });
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

async function main(): Promise<void> {
  const variants = ['fp32', 'dq-tensor', 'dq-token', 'dqmm'];
  for (const [k, n] of SHAPES) {
    const w = fillRandom(new Float32Array(n * k), 7).map((v) => v * 0.06);
    const bias = fillRandom(new Float32Array(n), 9).map((v) => v * 0.1);
    // activations with a few outlier channels, as DiT activations have
    const xData = fillRandom(new Float32Array(M * k), 3);
    for (let r = 0; r < M; r++) for (const c of [5, 77, 300]) xData[r * k + (c % k)] *= 20;
    const x = { x: HostTensor.float32([M, k], xData) };
    const sessions: Record<string, ModelSession> = {};
    for (const v of variants) {
      try {
        sessions[v] = await build(v, k, n, w, bias);
      } catch (e) {
        console.log(`  ${v}: cannot build/run (${(e as Error).message.split('\n')[0]})`);
      }
    }
    const ref = (await sessions.fp32.run(x)).y.data as Float32Array;
    const times: Record<string, { wall: number[]; cpu: number[] }> = {};
    const cos: Record<string, number> = {};
    for (const v of Object.keys(sessions)) {
      times[v] = { wall: [], cpu: [] };
      try {
        cos[v] = cosine((await sessions[v].run(x)).y.data as Float32Array, ref);
      } catch (e) {
        console.log(`  ${v}: run failed (${(e as Error).message.split('\n')[0]})`);
        delete sessions[v];
      }
    }
    for (let r = 0; r < RUNS; r++) {
      for (const v of Object.keys(sessions)) {
        const t = await timeWallCpu(() => sessions[v].run(x));
        times[v].wall.push(t.wall);
        times[v].cpu.push(t.cpu);
      }
    }
    const flop = 2 * M * k * n;
    const base = median(times.fp32.cpu);
    console.log(`[${M} x ${k}] x [${k} x ${n}] (${(flop / 1e9).toFixed(2)} GFLOP), threads ${THREADS}, load ${os.loadavg()[0].toFixed(1)}:`);
    for (const v of Object.keys(sessions)) {
      const wall = median(times[v].wall);
      const cpu = median(times[v].cpu);
      console.log(
        `  ${v.padEnd(10)} ${wall.toFixed(2)} ms wall, ${cpu.toFixed(2)} ms cpu (${(flop / (cpu / THREADS) / 1e6).toFixed(0)} G(FL)OP/s by cpu/threads), ` +
          `${(base / cpu).toFixed(2)}x fp32 by cpu, cosine to fp32 ${cos[v].toFixed(6)}`,
      );
    }
    for (const s of Object.values(sessions)) await s.release();
  }
  console.log(`peak RSS ${peakRssMiB().toFixed(0)} MiB`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
