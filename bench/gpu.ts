// The GPU check of issue #14 as one command (bench/gpu.sh runs it): on the device given (cuda, webgpu, or auto),
// (1) the fixture parity tests with every session on that device (SANA_DEVICE), then (2) the REAL Sana-600M
// configs with random weights at 1024 x 1024: Gemma-2-2B text encoding, 20 Flow-DPM-Solver steps with guidance 4.5
// (batch 1, CFG doubles the rows), DC-AE f32c32 decode; one warm-up image first, so the times are those of a
// loaded pipeline. Prints one JSON line. Target: the 20 transformer steps <= 1.5 s in total.
//
// Usage: npm run build && node dist/bench/gpu.js [--device cuda|webgpu|auto] [--precision auto|fp32|fp16] [--steps 20] [--size 1024] [--skip-parity]
// ref: issue "GPU execution" (#14); SANA.md §0, §5.5

import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { parseDevice } from '../src/runtime/device.js';
import { PrecisionRequest, resolveDevice, resolvePrecision } from '../src/runtime/device-probe.js';
import { assemblePipelineFolder, root } from './pipeline-folder.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

// half-precision: the float16 transformer against the fp32 fixtures, within its stated float16 tolerances
const PARITY_TESTS = ['pipeline', 'sana-transformer', 'dcae', 'gemma2', 'sprint-pipeline', 'half-precision'];

function parity(device: string): { passed: number; failed: number; seconds: number } {
  const t0 = performance.now();
  const files = PARITY_TESTS.map((t) => path.join(root, 'dist', 'test', `${t}.test.js`));
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, SANA_DEVICE: device },
    maxBuffer: 64 * 1024 * 1024,
  });
  const count = (key: string) => Number(r.stdout.match(new RegExp(`^# ${key} (\\d+)`, 'm'))?.[1] ?? NaN);
  if (r.status !== 0) process.stderr.write(r.stdout.split('\n').filter((l) => /not ok|error:|expected|actual/.test(l)).slice(0, 40).join('\n') + '\n');
  return { passed: count('pass'), failed: count('fail'), seconds: (performance.now() - t0) / 1000 };
}

function writeWeights(): void {
  for (const bench of ['transformer', 'dcae', 'text-encoder']) {
    const r = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', `${bench}.js`), '--write-only'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`bench/${bench}.ts --write-only failed`);
  }
}

async function main(): Promise<void> {
  const device = await resolveDevice(parseDevice(arg('device', 'auto')), (m) => process.stderr.write(`${m}\n`));
  const steps = Number(arg('steps', '20'));
  const size = Number(arg('size', '1024'));
  const precision = await resolvePrecision(arg('precision', 'auto') as PrecisionRequest, device, (m) => process.stderr.write(`${m}\n`));
  const report: Record<string, unknown> = { device, precision, steps, size, cores: os.availableParallelism(), node: process.version };
  if (!process.argv.includes('--skip-parity')) report.parity = parity(device);
  writeWeights();
  const model = assemblePipelineFolder(size);
  const t0 = performance.now();
  const { pipeline } = await loadSanaPipeline(model, { device, transformerPrecision: precision, keepResident: true });
  const request = { prompts: ['A cat holding a sign that says Hello World'], width: size, height: size, steps, guidanceScale: 4.5, seed: 42, binning: false };
  try {
    const warm = await pipeline.run({ ...request, steps: 2 });
    report.firstImageSeconds = (performance.now() - t0) / 1000;
    report.loadSeconds = warm.timings.loadSeconds;
    const r = await pipeline.run(request);
    const t = r.timings;
    report.textEncodingSeconds = t.encodeSeconds;
    report.stepSeconds = t.stepSeconds;
    report.transformerStepsSeconds = t.stepSeconds.reduce((a, b) => a + b, 0);
    report.decodeSeconds = t.decodeSeconds;
    report.totalSeconds = t.totalSeconds;
    report.stepsTargetMet = (report.transformerStepsSeconds as number) <= 1.5;
  } finally {
    await pipeline.release();
  }
  report.peakRssGiB = process.resourceUsage().maxRSS / 1024 / 1024;
  console.log(JSON.stringify(report));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: e instanceof Error ? e.message : String(e) }));
  process.exitCode = 1;
});
