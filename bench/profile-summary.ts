// Summarises an ONNX Runtime profile (SessionOptions.profilePrefix): kernel time of the last model run by op type
// and by node-name prefix (our graph scopes, e.g. "decoder.up_blocks.0"), with Conv throughput per weight shape.
//
//   node dist/bench/profile-summary.js <profile.json> [prefix depth, default 3]

import * as fs from 'node:fs';

interface Event {
  cat?: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string; input_type_shape?: Array<Record<string, number[]>>; output_type_shape?: Array<Record<string, number[]>> };
}

const [file, depthArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary <profile.json> [depth]');
const depth = Number(depthArg ?? 3);
const events = JSON.parse(fs.readFileSync(file, 'utf8')) as Event[];
const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
if (!runs.length) throw new Error(`${file}: no model_run events`);
const last = runs[runs.length - 1];
const kernels = events.filter(
  (e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= last.ts && e.ts <= last.ts + last.dur,
);
const total = kernels.reduce((s, e) => s + e.dur, 0);
const tally = (key: (e: Event) => string) => {
  const m = new Map<string, { us: number; n: number; flop: number }>();
  for (const e of kernels) {
    const k = key(e);
    const v = m.get(k) ?? { us: 0, n: 0, flop: 0 };
    v.us += e.dur;
    v.n++;
    v.flop += convFlop(e);
    m.set(k, v);
  }
  return [...m.entries()].sort((a, b) => b[1].us - a[1].us);
};

/** 2 x MACs of a Conv event from its weight and output shapes (0 for other ops). */
function convFlop(e: Event): number {
  if (e.args?.op_name !== 'Conv') return 0;
  const w = Object.values(e.args.input_type_shape?.[1] ?? {})[0];
  const y = Object.values(e.args.output_type_shape?.[0] ?? {})[0];
  if (!w || !y || w.length !== 4) return 0;
  return 2 * y.reduce((p, d) => p * d, 1) * w[1] * w[2] * w[3];
}

const pct = (us: number) => ((100 * us) / total).toFixed(1).padStart(5);
console.log(`runs (ms): ${runs.map((r) => Math.round(r.dur / 1000)).join(', ')}; last run kernels ${(total / 1000).toFixed(0)} ms`);
console.log('-- by op type');
for (const [k, v] of tally((e) => e.args?.op_name ?? '?')) console.log(`${k.padEnd(24)} ${(v.us / 1000).toFixed(1).padStart(9)} ms ${pct(v.us)}%  n=${v.n}`);
console.log(`-- by scope (depth ${depth})`);
for (const [k, v] of tally((e) => e.name.replace(/_kernel_time$/, '').split('.').slice(0, depth).join('.')).slice(0, 15)) {
  console.log(`${k.padEnd(40)} ${(v.us / 1000).toFixed(1).padStart(9)} ms ${pct(v.us)}%`);
}
console.log('-- Conv by weight shape');
const convs = tally((e) => {
  if (e.args?.op_name !== 'Conv') return '';
  const w = Object.values(e.args.input_type_shape?.[1] ?? {})[0];
  const y = Object.values(e.args.output_type_shape?.[0] ?? {})[0];
  return `w[${w}] -> y[${y}]`;
}).filter(([k]) => k);
for (const [k, v] of convs.slice(0, 15)) {
  console.log(`${k.padEnd(48)} ${(v.us / 1000).toFixed(1).padStart(9)} ms ${pct(v.us)}%  n=${v.n}  ${(v.flop / v.us / 1e3).toFixed(0)} GFLOP/s`);
}
