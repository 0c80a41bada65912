// SANA-Sprint against the 20-step pipeline at 1024 px, both end to end with the REAL configs and random weights:
// Sana_Sprint_0.6B_1024px (Sana-600M with the guidance embedder and RMS qk-norm across heads, SCMScheduler, 2 steps,
// embedded guidance, one transformer row per step) and Sana_600M_1024px (20 Flow-DPM-Solver steps with classifier-
// free guidance, two rows per step); the same Gemma-2-2B text encoder, tokenizer and DC-AE f32c32 decoder, one-shot
// loads as `sana generate` does. Prints each stage and the ratio.
//
// Writes the random weights once (.bench-cache/sana-sprint-600m, and the component benchmarks' caches via
// --write-only). Usage: npm run build && node dist/bench/sprint.js [--threads N] [--size 1024] [--flow-steps 20]
// ref: SANA.md §1.8 (guidance embedding), §7 (SCM sampler); issue "The rest of the SANA family" (#15)

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseSanaTransformerConfig } from '../src/models/sana/config.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { PipelineTimings } from '../src/pipeline/sana-pipeline.js';
import { initializeSanaTransformer, writeDiffusersComponent } from '../src/train/initialize.js';
import { assemblePipelineFolder, link, root } from './pipeline-folder.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** Sana_Sprint_0.6B_1024px/transformer/config.json (SANA.md §0 table): Sana-600M plus guidance embedder and qk-norm. */
function sprintTransformerConfig(px: number): Record<string, unknown> {
  const base = JSON.parse(fs.readFileSync(path.join(root, '.bench-cache', 'sana-600m', 'config.json'), 'utf8')) as Record<string, unknown>;
  return { ...base, sample_size: px / 32, guidance_embeds: true, guidance_embeds_scale: 0.1, qk_norm: 'rms_norm_across_heads', timestep_scale: 1.0 };
}

function writeComponentWeights(): void {
  for (const bench of ['transformer', 'dcae', 'text-encoder']) {
    const r = spawnSync(process.execPath, [path.join(root, 'dist', 'bench', `${bench}.js`), '--write-only'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`bench/${bench}.ts --write-only failed`);
  }
}

/** The Sprint pipeline folder: the flow folder's vae, text encoder and tokenizer, a Sprint transformer, SCMScheduler. */
function assembleSprintFolder(flowDir: string, px: number): string {
  const dir = path.join(root, '.bench-cache', `sana-sprint-600m-${px}px-pipeline`);
  const weights = path.join(root, '.bench-cache', 'sana-sprint-600m');
  const config = sprintTransformerConfig(px);
  if (!fs.existsSync(path.join(weights, 'diffusion_pytorch_model.safetensors'))) {
    process.stderr.write('writing random Sana-Sprint-600M weights (float32, ~2.4 GB) once...\n');
    writeDiffusersComponent(weights, config, initializeSanaTransformer(parseSanaTransformerConfig(config, 'sprint config'), 0));
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'transformer'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'scheduler'));
  fs.writeFileSync(path.join(dir, 'transformer', 'config.json'), JSON.stringify(config, null, 2));
  link(path.join(weights, 'diffusion_pytorch_model.safetensors'), path.join(dir, 'transformer', 'diffusion_pytorch_model.safetensors'));
  // component folders of their own (links out of a model folder are refused), hard-linking the same files
  for (const sub of ['vae', 'text_encoder', 'tokenizer']) {
    fs.mkdirSync(path.join(dir, sub));
    for (const f of fs.readdirSync(path.join(flowDir, sub))) {
      if (f.startsWith('.')) continue;
      link(path.join(flowDir, sub, f), path.join(dir, sub, f));
    }
  }
  fs.writeFileSync(
    path.join(dir, 'scheduler', 'scheduler_config.json'),
    JSON.stringify({ _class_name: 'SCMScheduler', num_train_timesteps: 1000, prediction_type: 'trigflow', sigma_data: 0.5 }),
  );
  const index = JSON.parse(fs.readFileSync(path.join(flowDir, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'model_index.json'), JSON.stringify({ ...index, _class_name: 'SanaSprintPipeline', scheduler: ['diffusers', 'SCMScheduler'] }));
  return dir;
}

interface Run {
  readonly label: string;
  readonly t: PipelineTimings;
  readonly wall: number;
}

async function run(label: string, model: string, request: Record<string, unknown>, threads?: number): Promise<Run> {
  const t0 = performance.now();
  const { pipeline } = await loadSanaPipeline(model, { threads });
  try {
    const r = await pipeline.run({ prompts: ['A cat holding a sign that says Hello World'], seed: 42, binning: false, ...request });
    return { label, t: r.timings, wall: (performance.now() - t0) / 1000 };
  } finally {
    await pipeline.release();
  }
}

function line(r: Run): string {
  const steps = r.t.stepSeconds.reduce((a, b) => a + b, 0);
  return (
    `  ${r.label}: total ${r.t.totalSeconds.toFixed(1)} s = text ${r.t.encodeSeconds.toFixed(1)} s + transformer load/caption ${r.t.prepareSeconds.toFixed(1)} s` +
    ` + ${r.t.stepSeconds.length} steps ${steps.toFixed(1)} s (${(steps / r.t.stepSeconds.length).toFixed(2)} s/step) + decode ${r.t.decodeSeconds.toFixed(1)} s`
  );
}

async function main(): Promise<void> {
  const px = Number(arg('size', '1024'));
  const flowSteps = Number(arg('flow-steps', '20'));
  const threads = process.argv.includes('--threads') ? Number(arg('threads', '2')) : undefined;
  writeComponentWeights();
  const flowDir = assemblePipelineFolder(px);
  const sprintDir = assembleSprintFolder(flowDir, px);
  const sprint = await run('Sprint, 2 steps, embedded guidance 4.5', sprintDir, { width: px, height: px, steps: 2, guidanceScale: 4.5 }, threads);
  const flow = await run(`Sana-600M, ${flowSteps} steps, CFG 4.5`, flowDir, { width: px, height: px, steps: flowSteps, guidanceScale: 4.5 }, threads);
  const rss = process.resourceUsage().maxRSS / 1024 / 1024;
  console.log(`SANA-Sprint vs the ${flowSteps}-step pipeline at ${px} x ${px}, REAL 600M configs (random weights), ${os.availableParallelism()} cores, load average ${os.loadavg()[0].toFixed(2)} at the end`);
  console.log(line(sprint));
  console.log(line(flow));
  const denoise = (r: Run) => r.t.stepSeconds.reduce((a, b) => a + b, 0);
  console.log(`  Sprint is ${(flow.t.totalSeconds / sprint.t.totalSeconds).toFixed(2)}x faster end to end, ${(denoise(flow) / denoise(sprint)).toFixed(1)}x in the transformer steps; peak RSS ${rss.toFixed(2)} GiB`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
