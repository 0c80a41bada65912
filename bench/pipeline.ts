// The whole text-to-image pipeline with the REAL Sana-600M 512 px configs (random weights): Gemma-2-2B text encoder
// (bf16 file), Sana-600M transformer, DC-AE f32c32 decoder, 20 Flow-DPM-Solver steps with guidance 4.5, 512 x 512.
// Prints the breakdown (text encoding, each step, decode) and peak RSS, against the PyTorch reference's ~82 s on
// this machine (20 x 3.1 s steps, two 6.1 s text encodings, a 7.6 s decode); target <= 40 s.
//
// The component weights come from the component benchmarks' caches (run them first, they write the files once);
// bench/pipeline-folder.ts links them into a diffusers-layout pipeline folder with a 512 px transformer config.
//
// Usage: npm run build && node dist/bench/pipeline.js [--steps 20] [--threads N] [--text-quantization int8]
// ref: SANA.md §0, §5.5, §7

import { loadSanaPipeline } from '../src/pipeline/components.js';
import { Gemma2LoadOptions } from '../src/models/gemma2/loader.js';
import { assemblePipelineFolder } from './pipeline-folder.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const steps = Number(arg('steps') ?? 20);
  const threads = arg('threads') ? Number(arg('threads')) : undefined;
  const textQuantization = (arg('text-quantization') ?? 'none') as Gemma2LoadOptions['quantization'];
  const model = assemblePipelineFolder();
  const { pipeline } = await loadSanaPipeline(model, { threads, textQuantization });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await pipeline.run({
    prompts: ['A cat holding a sign that says Hello World'],
    width: 512,
    height: 512,
    steps,
    guidanceScale: 4.5,
    seed: 42,
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const t = result.timings;
  const stepTotal = t.stepSeconds.reduce((a, b) => a + b, 0);
  const sorted = [...t.stepSeconds].sort((a, b) => a - b);
  const rssGiB = process.resourceUsage().maxRSS / 1024 / 1024; // maxRSS is in KiB
  console.log(`SANA-600M 512 px pipeline, ${steps} steps, guidance 4.5, text encoder ${textQuantization}, load avg ${(await import('node:os')).loadavg()[0].toFixed(2)}`);
  console.log(`  text encoding: ${t.encodeSeconds.toFixed(2)} s (of which load ${t.loadSeconds.encoder.toFixed(2)} s)   (reference 2 x 6.1 s)`);
  console.log(`  transformer load + caption K/V: ${t.prepareSeconds.toFixed(2)} s (load ${t.loadSeconds.denoiser.toFixed(2)} s)`);
  console.log(`  denoising: ${stepTotal.toFixed(2)} s for ${t.stepSeconds.length} steps, median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} s/step   (reference 20 x 3.1 s)`);
  console.log(`  decode: ${t.decodeSeconds.toFixed(2)} s (of which load ${t.loadSeconds.decoder.toFixed(2)} s)   (reference 7.6 s)`);
  console.log(`  total: ${t.totalSeconds.toFixed(2)} s wall (${wall.toFixed(2)} s measured here), CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s   (reference ~82 s; target <= 40 s)`);
  console.log(`  peak RSS: ${rssGiB.toFixed(2)} GiB`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
