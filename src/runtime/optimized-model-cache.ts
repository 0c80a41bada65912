// ONNX Runtime's own work at session creation, done once per machine: graph optimisation and constant folding (the
// DC-AE's Winograd kernel transforms and up-sampling phase kernels are computed from the weights there), the NCHWc
// layout of convolutions. The first session of a model saves the optimised graph with ORT's optimizedModelFilePath
// (weights in one external file beside it); later sessions open that file with optimisation off. Measured on the
// f32c32 DC-AE decoder (2 cores): 30 s to create a session from our graph, 0.3 s from the saved one, bit-identical
// outputs and the same speed.
//
// The saved graph is specific to this ONNX Runtime version and this CPU (ORT warns that layout optimisations are
// hardware dependent), so both are in the key, with the model bytes, every external weight file's identity (real
// path, size, mtime, header hash) and the options that change the optimised graph. Folders:
// `<weights folder>/.sana-ts-cache/ort-<label>-<key>/` when writable, else the user's cache (as the weight caches).
// Weights ORT did not change stay in the checkpoint's files, linked into the folder. CPU sessions only; a model
// with in-memory weights is not cached (its bytes are not in the model). A folder is
// complete when its `done.json` exists: it is written last, after the model and weights, then the folder is renamed
// into place, so a crash never leaves a half-written cache that is used. SANA_TS_ORT_CACHE=0 turns it off, as does
// the session option cacheOptimizedModel: false. ref: DESIGN.md (runtime)

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultWeightCacheDirs, sourceIdentity, writableFolder } from '../io/cache-dirs.js';
import { readJsonFile } from '../io/config.js';
import type { CompiledModel, SessionOptions } from './backend.js';
import { cpuFlagsLine } from './cpu-flags.js';

const FORMAT = 'sana-ts-ort-optimized-1';
const MODEL_FILE = 'model.onnx';
const WEIGHTS_FILE = 'weights.bin';
const DONE_FILE = 'done.json';

/** What the cache did in this process (for tests and verbose output). */
export const optimizedModelCacheEvents = { saved: 0, reused: 0, rebuilt: 0 };

export interface OptimizedModelPlan {
  /** A complete cached folder to open, with optimisation off; undefined when it must be made. */
  readonly cached?: string;
  /** Where the first session saves its optimised graph (a temporary folder), and where it then goes. */
  readonly save?: SavePlan;
}

export interface SavePlan {
  readonly tmp: string;
  readonly dir: string;
  /** The session options that shape the saved graph (prepacking, optimisation level, folding), as JSON. */
  readonly settings: string;
}

/** The CPU's model name and feature flags (the kernels and layouts ORT picks depend on them). */
function cpuIdentity(): string {
  // not Linux (no flags): the model name and architecture still separate machines
  return `${process.arch} ${os.cpus()[0]?.model ?? ''} ${cpuFlagsLine()}`;
}

/** Below this much weight, cacheOptimizedModel 'auto' does not cache (such sessions are made in milliseconds). */
export const AUTO_MIN_WEIGHT_BYTES = 64 * 2 ** 20;

/**
 * The cache plan for a CPU session of `model` on ONNX Runtime `runtimeVersion`, or undefined when this model is not
 * cached.
 */
export function planOptimizedModel(model: CompiledModel, options: SessionOptions, label: string, runtimeVersion: string): OptimizedModelPlan | undefined {
  if (!options.cacheOptimizedModel || process.env.SANA_TS_ORT_CACHE === '0' || model.memoryFiles?.size || !model.externalDataFolder || model.externalFiles.length === 0) return undefined;
  const sources = model.externalFiles.map((f) => path.join(model.externalDataFolder!, f));
  const bytes = sources.reduce((n, f) => n + fs.statSync(f).size, 0);
  if (options.cacheOptimizedModel === 'auto' && bytes < AUTO_MIN_WEIGHT_BYTES) return undefined;
  const settingValues = [options.optimization ?? 'all', options.prepack ?? true, options.noConstantFolding ?? false];
  const settings = JSON.stringify(settingValues);
  const h = createHash('sha256');
  // the settings spread into the key as before they were recorded, so folders already on disk keep their names
  h.update(JSON.stringify([FORMAT, runtimeVersion, cpuIdentity(), ...settingValues]));
  h.update(JSON.stringify(sourceIdentity(sources)));
  h.update(model.bytes);
  const name = `ort-${label}-${h.digest('hex').slice(0, 20)}`;
  const dirs = defaultWeightCacheDirs(model.externalDataFolder);
  for (const d of dirs) {
    const dir = path.join(d, name);
    if (fs.existsSync(path.join(dir, DONE_FILE)) && fs.existsSync(path.join(dir, MODEL_FILE))) return { cached: dir };
  }
  const root = dirs.find(writableFolder);
  if (!root) return undefined;
  // room for what ORT writes: folded weights (Winograd kernels are 4x their 3x3 weights) and prepacked GEMM weights
  // (about the float32 size again), float32 even from a 16-bit checkpoint
  fs.mkdirSync(root, { recursive: true });
  const free = fs.statfsSync(root);
  if (free.bavail * free.bsize < 4 * bytes + 256e6) return undefined;
  return { save: { tmp: path.join(root, `${name}.tmp-${process.pid}`), dir: path.join(root, name), settings } };
}

/** ORT session options that save the optimised graph into `tmp` (config keys under `extra.session`, as ORT's "session.*"). */
export function saveOptions(tmp: string): { optimizedModelFilePath: string; config: Record<string, string> } {
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  return {
    optimizedModelFilePath: path.join(tmp, MODEL_FILE),
    config: {
      optimized_model_external_initializers_file_name: WEIGHTS_FILE,
      optimized_model_external_initializers_min_size_in_bytes: '1024',
      // the GEMM kernels' prepacked weights too, so a reopened session maps them instead of packing again
      save_external_prepacked_constant_initializers: '1',
    },
  };
}

/** Marks the saved folder complete and moves it into place (another process may have won the race: fine). */
export function commitSaved(save: SavePlan, label: string, model: CompiledModel, runtimeVersion: string): void {
  const sources = model.externalFiles.map((f) => fs.realpathSync(path.join(model.externalDataFolder!, f))).sort();
  try {
    if (!fs.existsSync(path.join(save.tmp, MODEL_FILE))) return;
    // Initializers ORT left untouched still point at the checkpoint's files, relative to the model's folder: link
    // them in (a hard link where the file system allows, else a symbolic one).
    for (const f of model.externalFiles) {
      const link = path.join(save.tmp, f);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      const target = fs.realpathSync(path.join(model.externalDataFolder!, f));
      try {
        fs.linkSync(target, link);
      } catch {
        fs.symlinkSync(target, link);
      }
    }
    fs.writeFileSync(path.join(save.tmp, DONE_FILE), `${JSON.stringify({ format: FORMAT, label, ort: runtimeVersion, settings: save.settings, sources })}\n`);
    if (fs.existsSync(save.dir)) fs.rmSync(save.tmp, { recursive: true, force: true });
    else fs.renameSync(save.tmp, save.dir);
  } catch {
    fs.rmSync(save.tmp, { recursive: true, force: true });
    return;
  }
  removeStale(path.dirname(save.dir), label, sources, save.settings, save.dir);
}

/**
 * Removes this label's older folders made from the same weight files with the same settings (the graph, the
 * checkpoint or ORT changed since). A folder made with other settings (say, without prepacking) is another
 * session's cache, not a stale one: removing it would make the two rebuild each other's at every load.
 */
function removeStale(root: string, label: string, sources: readonly string[], settings: string, keep: string): void {
  for (const entry of fs.readdirSync(root)) {
    const dir = path.join(root, entry);
    if (dir === keep || !entry.startsWith(`ort-${label}-`) || entry.includes('.tmp-')) continue;
    try {
      const done = readJsonFile(path.join(dir, DONE_FILE)) as { format?: string; label?: string; settings?: string; sources?: string[] };
      const sameSettings = done.settings === undefined || done.settings === settings; // folders from before settings were recorded: replaced
      if (done.format === FORMAT && done.label === label && sameSettings && JSON.stringify(done.sources) === JSON.stringify(sources)) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // not ours or unreadable: left alone
    }
  }
}

/** The saved model file of a cached folder. */
export const cachedModelFile = (dir: string): string => path.join(dir, MODEL_FILE);
