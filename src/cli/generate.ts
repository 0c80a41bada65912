// `sana generate "prompt" ...`: text to PNG through the same pipeline the library and server use.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { HostTensor } from '../io/host-tensor.js';
import { writePng } from '../io/png.js';
import { checkWritableTarget } from '../io/atomic-write.js';
import { readSafetensors } from '../io/safetensors.js';
import { loadSanaPipeline } from '../pipeline/components.js';
import { toRgbImages } from '../pipeline/postprocess.js';
import { GenerateRequest } from '../pipeline/request.js';
import { imageTextChunks } from '../pipeline/image-metadata.js';
import { imageTensorFromPng, maskTensorFromPng } from '../pipeline/image-input.js';
import { PipelineResult } from '../pipeline/sana-pipeline.js';
import { normaliseSeed } from '../random/torch-rng.js';
import { UsageError } from './errors.js';
import { createProgress, formatSeconds } from './progress.js';
import { parseNumber, parsePositiveInt } from './arg-values.js';
import { DEVICE_HELP, PRECISION_HELP } from './device-flag.js';
import { MODEL_LOAD_FLAGS, modelLoadFromFlags } from './model-load-flags.js';

export const GENERATE_HELP = `Usage: sana generate "PROMPT" ["PROMPT" ...] [--model DIR|REPO_ID] [options]

Generates images from text and writes PNG files (with prompt, seed and settings in PNG text chunks).

Options:
  --model DIR|REPO_ID        pipeline folder (model_index.json) or a Hugging Face repo id in the local cache
                             (default: the bundled model, coloured shapes at 256 px)
  -o, --output FILE          output PNG (default sana-<seed>.png); several images get -<n> before .png
  --negative TEXT            negative prompt (default "")
  --steps N                  denoising steps (default 20; 1..1000, docs/limits.md)
  --guidance G               classifier-free guidance scale (default 4.5; <= 1 turns guidance off)
  --seed N                   seed of a torch CPU generator: same latents as diffusers with that seed on CPU
  --latents FILE             initial latents from a safetensors file (tensor "latents") instead of a seed
  --width W --height H       image size (default: the model's native size)
  --no-binning               generate at exactly W x H (multiples of 32) instead of the nearest aspect bin
  --sampler dpm|euler        Flow-DPM-Solver (default from the model) or Flow-Euler
  --flow-shift S             override the scheduler's flow_shift
  --num-images N             images per prompt (default 1; at most 64 images a call)
  --image FILE               image-to-image: start from this PNG, noised to the schedule cut by --strength
  --strength S               share of the schedule run on the start image, in (0, 1] (default 0.6; 1 with --mask)
  --mask FILE                inpainting: a PNG of the image's size, white = repaint, black = keep (needs --image)
  --pag-scale S              perturbed-attention guidance scale (default 0 = off; diffusers' default is 3)
  --pag-adaptive-scale A     PAG scale decay: pag-scale - A (1000 - t), at least 0 (default 0)
  --pag-layers PATTERN       blocks PAG perturbs, a regular expression searched in transformer_blocks.K.attn1
                             (repeatable, or comma-separated; e.g. transformer_blocks.8)
  --lora FILE[:SCALE]        a LoRA for the transformer (diffusers or kohya safetensors; repeatable; default
                             strength 1), applied in the graph so the base weights stay memory-mapped
  --lora-fuse                fuse the LoRAs into the weights at load instead (no per-step cost)
  --control-image FILE       ControlNet pipelines: the control image (PNG)
  --control-scale S          ControlNet conditioning scale (default 1)
  --max-timesteps T          SANA-Sprint: the first TrigFlow time (default 1.5708)
  --intermediate-timesteps T SANA-Sprint: the middle time of a 2-step schedule (default 1.3; "none": evenly
                             spaced times, the default for other step counts)
  --max-sequence-length N    caption tokens kept (default 300; 2..4096); longer prompts are truncated with a warning
  --text-quantization Q      text encoder linear layers: none (default), int8 (integer GEMM: int8 weights per
                             channel, activations per token) or int4 (weight-only); cached next to the
                             weights after the first load
  --transformer-quantization Q
                             transformer block linear layers: none (default) or int8 (per-channel int8
                             weights, per-token int8 activations; quantized once into the weight cache)
  --vae-tiling               decode in 512 px tiles every 448 px, blended as diffusers does (bounded memory
                             for large images)
  --vae-tile-size N          decode in N x N px tiles instead (a multiple of 32; implies --vae-tiling)
  --vae-tile-stride S        distance between tiles in px (default: 7/8 of the tile size)
  --threads N                CPU threads (default: all cores; more are capped at the core count, with a notice)
  ${DEVICE_HELP}
  ${PRECISION_HELP}
  --quiet                    no progress output
  --json                     print a machine-readable record on stdout
  -h, --help                 show this help
`;

function outputPaths(output: string, count: number): string[] {
  if (count === 1) return [output];
  const ext = path.extname(output) || '.png';
  const stem = output.slice(0, output.length - path.extname(output).length);
  return Array.from({ length: count }, (_, i) => `${stem}-${i}${ext}`);
}

function checkWritable(file: string): void {
  const dir = path.dirname(path.resolve(file));
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new UsageError(`--output: ${file} is a folder`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new UsageError(`--output: cannot write into ${dir} (missing or not writable)`);
  }
  // a device, FIFO or socket is refused before any work, not after the images are made
  try {
    checkWritableTarget(file);
  } catch (e) {
    throw new UsageError(`--output: ${(e as Error).message}`);
  }
}

function readInputFile(file: string, flag: string): Buffer {
  if (!fs.existsSync(file)) throw new UsageError(`${flag}: ${file} does not exist`);
  if (!fs.statSync(file).isFile()) throw new UsageError(`${flag}: ${file} is not a file`);
  return fs.readFileSync(file);
}

function readLatents(file: string): HostTensor<'float32'> {
  if (!fs.existsSync(file)) throw new UsageError(`--latents: ${file} does not exist`);
  const t = readSafetensors(file).get('latents');
  if (!t) throw new UsageError(`--latents: ${file} has no tensor named "latents"`);
  if (t.dtype !== 'float32') throw new UsageError(`--latents: tensor "latents" in ${file} is ${t.dtype}, expected float32`);
  return t as HostTensor<'float32'>;
}

export async function generateCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      output: { type: 'string', short: 'o' },
      negative: { type: 'string' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      seed: { type: 'string' },
      latents: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      'no-binning': { type: 'boolean' },
      sampler: { type: 'string' },
      'flow-shift': { type: 'string' },
      'num-images': { type: 'string' },
      image: { type: 'string' },
      strength: { type: 'string' },
      mask: { type: 'string' },
      'pag-scale': { type: 'string' },
      'pag-layers': { type: 'string', multiple: true },
      'pag-adaptive-scale': { type: 'string' },
      'control-image': { type: 'string' },
      'control-scale': { type: 'string' },
      'max-timesteps': { type: 'string' },
      'intermediate-timesteps': { type: 'string' },
      'max-sequence-length': { type: 'string' },
      ...MODEL_LOAD_FLAGS,
      quiet: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(GENERATE_HELP);
    return;
  }
  if (!positionals.length) throw new UsageError('give a prompt, e.g. sana generate "a red circle left of a blue square"');
  const sampler = values.sampler;
  if (sampler !== undefined && sampler !== 'dpm' && sampler !== 'euler') {
    throw new UsageError(`--sampler: expected dpm or euler, got "${sampler}"`);
  }
  let seed: bigint | undefined;
  if (values.seed !== undefined) {
    if (!/^-?\d+$/.test(values.seed)) throw new UsageError(`--seed: expected an integer, got "${values.seed}"`);
    try {
      seed = normaliseSeed(BigInt(values.seed), '--seed');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const req: GenerateRequest = {
    prompts: positionals,
    negativePrompt: values.negative,
    steps: values.steps === undefined ? undefined : parseNumber(values.steps, '--steps'),
    guidanceScale: values.guidance === undefined ? undefined : parseNumber(values.guidance, '--guidance'),
    seed,
    latents: values.latents ? readLatents(values.latents) : undefined,
    width: values.width === undefined ? undefined : parseNumber(values.width, '--width'),
    height: values.height === undefined ? undefined : parseNumber(values.height, '--height'),
    binning: !values['no-binning'],
    sampler,
    flowShift: values['flow-shift'] === undefined ? undefined : parseNumber(values['flow-shift'], '--flow-shift'),
    numImagesPerPrompt: values['num-images'] === undefined ? undefined : parseNumber(values['num-images'], '--num-images'),
    maxSequenceLength:
      values['max-sequence-length'] === undefined ? undefined : parseNumber(values['max-sequence-length'], '--max-sequence-length'),
    image: values.image ? imageTensorFromPng(readInputFile(values.image, '--image'), `--image ${values.image}`) : undefined,
    strength: values.strength === undefined ? undefined : parseNumber(values.strength, '--strength'),
    mask: values.mask ? maskTensorFromPng(readInputFile(values.mask, '--mask'), `--mask ${values.mask}`) : undefined,
    pagScale: values['pag-scale'] === undefined ? undefined : parseNumber(values['pag-scale'], '--pag-scale'),
    pagAdaptiveScale: values['pag-adaptive-scale'] === undefined ? undefined : parseNumber(values['pag-adaptive-scale'], '--pag-adaptive-scale'),
    pagLayers: values['pag-layers']?.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean),
    controlImage: values['control-image']
      ? imageTensorFromPng(readInputFile(values['control-image'], '--control-image'), `--control-image ${values['control-image']}`)
      : undefined,
    controlScale: values['control-scale'] === undefined ? undefined : parseNumber(values['control-scale'], '--control-scale'),
    maxTimesteps: values['max-timesteps'] === undefined ? undefined : parseNumber(values['max-timesteps'], '--max-timesteps'),
    intermediateTimesteps:
      values['intermediate-timesteps'] === undefined
        ? undefined
        : values['intermediate-timesteps'] === 'none'
          ? null
          : parseNumber(values['intermediate-timesteps'], '--intermediate-timesteps'),
  };
  if (values.output) checkWritable(values.output);

  const progress = createProgress(process.stderr, Boolean(values.quiet));
  const { pipeline, modelName } = await loadSanaPipeline(values.model, await modelLoadFromFlags(values, (m) => progress.warn(m)));
  let result: PipelineResult;
  try {
    const run = pipeline.generate(req);
    let stepTotal = 0;
    let tileTotal = 0;
    for (;;) {
      const ev = await run.next();
      if (ev.done) {
        result = ev.value;
        break;
      }
      const e = ev.value;
      if (e.type === 'stage') progress.stage({ encode: 'encoding prompts', denoise: 'denoising', decode: 'decoding' }[e.stage]);
      else if (e.type === 'warning') progress.warn(e.message);
      else if (e.type === 'tile') {
        tileTotal += e.seconds;
        progress.step(e.tile, e.total, e.seconds, tileTotal, 'tile');
      } else {
        stepTotal += e.seconds;
        progress.step(e.step, e.total, e.seconds, stepTotal);
      }
    }
  } finally {
    progress.done();
    await pipeline.release();
  }

  const r = result.request;
  const output = values.output ?? `sana-${String(r.seed)}.png`;
  const images = toRgbImages(result.images);
  const files = outputPaths(output, images.length);
  images.forEach((img, i) => {
    const text = imageTextChunks({ request: r, index: i, sampler: pipeline.samplerName(r.sampler), model: modelName, width: img.width, height: img.height });
    writePng(files[i], img, text);
  });
  const t = result.timings;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  if (!values.quiet) {
    const steps = t.stepSeconds.reduce((a, b) => a + b, 0);
    process.stderr.write(
      [
        `wrote ${files.join(', ')} (${images[0].width}x${images[0].height}, generated at ${result.generatedWidth}x${result.generatedHeight}, seed ${r.latents ? 'from latents' : String(r.seed)})`,
        `time: text encoding ${formatSeconds(t.encodeSeconds)}, transformer load ${formatSeconds(t.prepareSeconds)}, ${t.stepSeconds.length} steps ${formatSeconds(steps)} (${(steps / t.stepSeconds.length).toFixed(2)} s/step), decode ${formatSeconds(t.decodeSeconds)}, total ${formatSeconds(t.totalSeconds)}`,
        `peak memory: ${(peakRss / 2 ** 30).toFixed(2)} GiB`,
        '',
      ].join('\n'),
    );
  }
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({
        files,
        prompts: r.prompts,
        negativePrompt: r.negativePrompt,
        seed: r.latents ? null : String(r.seed),
        steps: r.steps,
        guidance: r.guidanceScale,
        sampler: pipeline.samplerName(r.sampler),
        model: modelName,
        width: r.width,
        height: r.height,
        generatedWidth: result.generatedWidth,
        generatedHeight: result.generatedHeight,
        timings: t,
        peakRssBytes: peakRss,
        warnings: result.warnings,
      })}\n`,
    );
  }
}
