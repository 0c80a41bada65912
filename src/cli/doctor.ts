// `sana doctor DIR`: validates a model folder without generating. Every check is the one loading does (the strict
// safetensors reader, the containment of every named file, the config parsers, the strict weight binding of each
// model's graphs, the tokenizer's checks and the pipeline's cross-component checks), run on each component in turn
// so that one report lists what is wrong with each part, or says that the folder is sound. Graphs are built but
// never compiled: no ONNX Runtime session is created and no weight bytes are read.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { containedPath } from '../io/contained-path.js';
import { readJsonFile } from '../io/config.js';
import { WeightStore, findWeights } from '../io/weights.js';
import { readDcaeConfig } from '../models/dcae/config.js';
import { buildGraph as buildDcaeGraph } from '../models/dcae/model.js';
import { buildGemma2FromFolder } from '../models/gemma2/loader.js';
import { readSanaTransformerConfig, sanaDims } from '../models/sana/config.js';
import { buildCaptionGraph, buildDenoiseGraph } from '../models/sana/graphs.js';
import { WeightBinder } from '../nn/weight-binder.js';
import { pipelineComponents } from '../pipeline/components.js';
import { resolvePipelineFolder } from '../pipeline/model-folder.js';
import { SanaPipeline } from '../pipeline/sana-pipeline.js';
import { createScheduler, readSchedulerConfig } from '../schedulers/scheduler-config.js';
import { GemmaTokenizer } from '../text/tokenizer.js';
import { UsageError } from './errors.js';

export const DOCTOR_HELP = `Usage: sana doctor DIR|REPO_ID [--variant NAME] [--json]

Validates a model folder without generating: every file it names (inside the folder), every safetensors header
(strict), every config key and limit, every weight's key, shape and dtype against the model its config describes,
the tokenizer, the scheduler, and whether the components fit together. Prints a report per component and exits
with code 2 when something is wrong.

DIR is a pipeline folder (model_index.json) or a single component folder (a transformer, vae, text_encoder,
tokenizer or scheduler folder); REPO_ID is a Hugging Face repo id found in the local cache.

Options:
  --variant NAME   weight variant to check: fp16 or bf16 (default: the file loading would pick)
  --json           print the report as JSON on stdout
  -h, --help       show this help
`;

type ComponentName = 'transformer' | 'vae' | 'text_encoder' | 'tokenizer' | 'scheduler';
const COMPONENTS: readonly ComponentName[] = ['transformer', 'vae', 'text_encoder', 'tokenizer', 'scheduler'];

export interface PartReport {
  /** "pipeline" (model_index.json and the cross-component checks) or a component folder's name. */
  readonly part: string;
  readonly sound: boolean;
  /** What was found, for a sound part. */
  readonly summary?: string;
  /** One entry per problem (a message may span lines). */
  readonly problems: readonly string[];
}

/** Weight dtypes the models compute from (cast in the graph); anything else in a checkpoint is a mistake. */
const FLOAT_DTYPES = new Set(['float32', 'float16', 'bfloat16']);

function message(e: unknown): string {
  const err = e as Error;
  // an engine error here is a bug of ours, not of the folder: say so rather than blame the file
  const bug = e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError;
  return bug ? `internal error while checking (please report): ${err.stack ?? err.message}` : (err.message ?? String(e));
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** dtypes of a checkpoint, and a problem for each tensor that is not floating point. */
function weightDtypes(store: WeightStore, problems: string[]): string {
  const dtypes = new Set<string>();
  const bad: string[] = [];
  for (const name of store.names()) {
    const { dtype } = store.get(name).info;
    // batch norm's step counter is an integer buffer that the models ignore
    if (name.endsWith('.num_batches_tracked')) continue;
    dtypes.add(dtype);
    if (!FLOAT_DTYPES.has(dtype)) bad.push(`${name} is ${dtype}`);
  }
  if (bad.length) {
    problems.push(`${store.source}: weights must be float32, float16 or bfloat16:\n  ${bad.slice(0, 10).join('\n  ')}${bad.length > 10 ? `\n  ... and ${bad.length - 10} more` : ''}`);
  }
  return [...dtypes].sort().join('/');
}

function checkTransformer(dir: string, variant: string | undefined, problems: string[]): string {
  const config = readSanaTransformerConfig(dir);
  const store = WeightStore.open(findWeights(dir, ['diffusion_pytorch_model'], variant));
  const dtypes = weightDtypes(store, problems);
  try {
    const caption = buildCaptionGraph(config, store);
    const denoise = buildDenoiseGraph(config, store);
    WeightBinder.finishAll(`SanaTransformer2DModel (${dir})`, [caption.binder, denoise.binder]);
  } catch (e) {
    problems.push(message(e));
  }
  return `SanaTransformer2DModel: ${config.numLayers} blocks ${sanaDims(config).inner} wide, ${store.size} tensors ${dtypes} (${megabytes(store.byteSize())})`;
}

function checkVae(dir: string, variant: string | undefined, problems: string[]): string {
  const config = readDcaeConfig(path.join(dir, 'config.json'));
  const store = WeightStore.open(findWeights(dir, ['diffusion_pytorch_model'], variant));
  const dtypes = weightDtypes(store, problems);
  // generation needs the decoder; an encoder is checked when the checkpoint has one
  const parts = [...store.names()].some((n) => n.startsWith('encoder.')) ? (['decoder', 'encoder'] as const) : (['decoder'] as const);
  for (const part of parts) {
    try {
      buildDcaeGraph(part, config, store, false);
    } catch (e) {
      problems.push(message(e));
    }
  }
  return `AutoencoderDC (${parts.join(' + ')}): ${config.encoderBlockOutChannels.length} stages, ${config.latentChannels} latent channels, ${store.size} tensors ${dtypes} (${megabytes(store.byteSize())})`;
}

interface TextEncoderFacts {
  vocabSize: number;
}

function checkTextEncoder(dir: string, variant: string | undefined, problems: string[], facts: { text?: TextEncoderFacts }): string {
  // dense weights and no cache folder: building the graph reads headers only and writes nothing
  const { config } = buildGemma2FromFolder(dir, { variant, quantization: 'none', weightCacheDir: null });
  facts.text = { vocabSize: config.vocabSize };
  const store = WeightStore.open(findWeights(dir, ['model'], variant));
  const dtypes = weightDtypes(store, problems);
  return `Gemma-2: ${config.numHiddenLayers} layers ${config.hiddenSize} wide, vocabulary ${config.vocabSize}, ${store.size} tensors ${dtypes} (${megabytes(store.byteSize())})`;
}

/** The largest id the tokenizer can produce: every one must index the text encoder's embedding table. */
function largestTokenId(dir: string): number {
  const json = readJsonFile(containedPath(dir, 'tokenizer.json', { file: dir }));
  const vocab = Object.values((json.model as { vocab: Record<string, number> }).vocab);
  const added = (json.added_tokens as Array<{ id: number }>).map((t) => t.id);
  return [...vocab, ...added].reduce((a, b) => Math.max(a, b), -1);
}

function checkTokenizer(dir: string, problems: string[], facts: { text?: TextEncoderFacts }): string {
  const tokenizer = GemmaTokenizer.fromFolder(dir);
  const largest = largestTokenId(dir);
  if (facts.text && largest >= facts.text.vocabSize) {
    problems.push(`${path.join(dir, 'tokenizer.json')}: token id ${largest} is outside the text encoder's vocabulary of ${facts.text.vocabSize} (vocab_size)`);
  }
  return `GemmaTokenizer: ids 0..${largest}, pad ${tokenizer.padId}, bos ${tokenizer.bosId}${tokenizer.addEos ? `, eos ${tokenizer.eosId}` : ''}`;
}

function checkScheduler(dir: string): string {
  const config = readSchedulerConfig(dir);
  createScheduler(config);
  const shift = 'flowShift' in config ? `flow shift ${config.flowShift}, ` : '';
  return `${config.className}: ${shift}${config.numTrainTimesteps} training timesteps`;
}

function checkComponent(name: ComponentName, dir: string, variant: string | undefined, facts: { text?: TextEncoderFacts }): PartReport {
  const problems: string[] = [];
  let summary: string | undefined;
  try {
    if (name === 'transformer') summary = checkTransformer(dir, variant, problems);
    else if (name === 'vae') summary = checkVae(dir, variant, problems);
    else if (name === 'text_encoder') summary = checkTextEncoder(dir, variant, problems, facts);
    else if (name === 'tokenizer') summary = checkTokenizer(dir, problems, facts);
    else summary = checkScheduler(dir);
  } catch (e) {
    problems.push(message(e));
  }
  return { part: name, sound: problems.length === 0, summary: problems.length ? undefined : summary, problems };
}

/** Which component a folder of its own holds, from the files and the class its config names. */
function detectComponent(dir: string): ComponentName | undefined {
  const has = (f: string) => fs.existsSync(containedPath(dir, f, { file: dir }));
  if (has('scheduler_config.json')) return 'scheduler';
  if (has('tokenizer.json') || has('tokenizer_config.json')) return 'tokenizer';
  if (!has('config.json')) return undefined;
  const config = readJsonFile(containedPath(dir, 'config.json', { file: dir }));
  if (config._class_name === 'SanaTransformer2DModel') return 'transformer';
  if (config._class_name === 'AutoencoderDC') return 'vae';
  if (config.model_type === 'gemma2') return 'text_encoder';
  return undefined;
}

/** Checks a pipeline folder (or repo id) or a single component folder; one report per part. */
export function doctorReport(model: string, variant?: string): PartReport[] {
  const facts: { text?: TextEncoderFacts } = {};
  const isPipeline = !fs.existsSync(model) || fs.existsSync(path.join(model, 'model_index.json'));
  if (!isPipeline) {
    if (!fs.statSync(model).isDirectory()) throw new UsageError(`${model}: not a folder`);
    const kind = detectComponent(model);
    if (!kind) {
      throw new UsageError(`${model}: neither a pipeline folder (model_index.json) nor a component folder this implementation knows (${COMPONENTS.join(', ')})`);
    }
    return [checkComponent(kind, model, variant, facts)];
  }
  const reports: PartReport[] = [];
  let root: string;
  let present: ComponentName[];
  let layoutProblem: string | undefined;
  try {
    const folder = resolvePipelineFolder(model);
    root = folder.root;
    present = COMPONENTS.filter((c) => folder.components[c] !== undefined);
  } catch (e) {
    // the layout is wrong; the components that are there can still be checked one by one
    layoutProblem = message(e);
    if (!fs.existsSync(model) || !fs.statSync(model).isDirectory()) return [{ part: 'pipeline', sound: false, problems: [layoutProblem] }];
    root = path.resolve(model);
    present = COMPONENTS.filter((c) => {
      try {
        return fs.statSync(containedPath(root, c, { file: root })).isDirectory();
      } catch {
        return false;
      }
    });
  }
  for (const c of present) reports.push(checkComponent(c, path.join(root, c), variant, facts));
  const pipelineProblems = layoutProblem ? [layoutProblem] : [];
  if (!layoutProblem && reports.every((r) => r.sound)) {
    try {
      // the pipeline's own cross-component checks (latent channels, caption width)
      new SanaPipeline(pipelineComponents(root, { variant }));
    } catch (e) {
      pipelineProblems.push(message(e));
    }
  }
  const fit = reports.every((r) => r.sound) ? 'they fit together' : 'whether they fit together is checked once they are sound';
  const pipeline: PartReport = {
    part: 'pipeline',
    sound: pipelineProblems.length === 0,
    summary: pipelineProblems.length ? undefined : `model_index.json lists ${present.join(', ')}; ${fit}`,
    problems: pipelineProblems,
  };
  return [pipeline, ...reports];
}

function printReport(model: string, reports: readonly PartReport[]): void {
  const width = Math.max(...reports.map((r) => r.part.length));
  const lines = [`sana doctor: ${model}`];
  for (const r of reports) {
    const head = `  ${r.part.padEnd(width)}  ${r.sound ? 'sound' : 'PROBLEM'}`;
    if (r.sound) lines.push(`${head}  ${r.summary ?? ''}`.trimEnd());
    else {
      lines.push(head);
      for (const p of r.problems) lines.push(...p.split('\n').map((l) => `      ${l}`));
    }
  }
  const bad = reports.filter((r) => !r.sound).length;
  lines.push(bad ? `${bad} of ${reports.length} parts have problems` : 'sound: every file, key, shape, dtype and config value checked');
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function doctorCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { variant: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(DOCTOR_HELP);
    return;
  }
  if (positionals.length !== 1) throw new UsageError('give one model folder or repo id, e.g. sana doctor models/default');
  const model = positionals[0];
  const reports = doctorReport(model, values.variant);
  if (values.json) process.stdout.write(`${JSON.stringify({ model, sound: reports.every((r) => r.sound), parts: reports }, null, 2)}\n`);
  else printReport(model, reports);
  const bad = reports.filter((r) => !r.sound);
  if (bad.length) throw new UsageError(`${model}: ${bad.map((r) => r.part).join(', ')} ${bad.length === 1 ? 'has' : 'have'} problems`);
}
