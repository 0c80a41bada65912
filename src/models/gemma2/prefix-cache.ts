// The instruction prefix cache of the Gemma-2 text encoder. ref: SANA.md §4.3, §4.5
//
// Every positive prompt starts with the same tokens at the same positions: BOS and the Complex Human Instruction
// (all of it but its trailing "▁", which merges into the prompt's first word). Gemma-2 is causal, so each layer's
// keys and values at those positions, and their last hidden states, never depend on the prompt. We compute them once
// (one run of the cached graph with no past), keep them for the life of the encoder, and persist them beside the
// weight cache; a prompt then runs only its own tokens against them. Of the prefix's hidden states SANA keeps
// only position 0 (select_index = [0] + the last 299 positions), but all P rows are kept so the encoder's output
// is the full [B, P+T, hidden] of the uncached run.
//
// The file is `gemma2-prefix-<key>.safetensors` in the first weight-cache folder that holds a valid one (else
// written to the first writable one, atomically), the key a SHA-256 of the format, the checkpoint's identity (each
// weight file's real path, size, mtime and header hash, as the weight cache), the settings that change the numbers
// (quantization, softcap) and the prefix ids. A file that does not hold what the key and shapes promise is
// recomputed; files of the same checkpoint paths with an older identity are removed when a new one is written.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostTensor } from '../../io/host-tensor.js';
import { SafetensorsFile, writeSafetensors } from '../../io/safetensors.js';
import { sourceIdentity, writableFolder } from '../../nn/weight-cache.js';
import { ModelSession } from '../../runtime/backend.js';
import { Gemma2Config } from './config.js';

/** Bumped whenever what a prefix file holds changes meaning. */
const PREFIX_FORMAT = 'sana-ts-gemma2-prefix-1';
const LABEL = 'gemma2-prefix';

/** What keys a persisted prefix besides its ids: where it may live, the checkpoint files, the numeric settings. */
export interface PrefixCacheIdentity {
  /** Cache folders in order of preference; empty = memory only. */
  readonly dirs: readonly string[];
  readonly sourceFiles: readonly string[];
  readonly settings: Readonly<Record<string, string | number | boolean>>;
}

export interface PrefixState {
  /** The P token ids (BOS first). */
  readonly ids: readonly number[];
  /** Per layer: keys (after RoPE) and values [1, Hkv, P, D]. */
  readonly keys: readonly HostTensor<'float32'>[];
  readonly values: readonly HostTensor<'float32'>[];
  /** Last hidden states of the prefix positions [P, hidden]. */
  readonly hidden: HostTensor<'float32'>;
  /** The file it was read from or written to (undefined: memory only, or the write failed). */
  readonly file?: string;
  /** True when this load computed it (rather than reading a file). */
  readonly computed: boolean;
  /** Why it could not be persisted, when it could not. */
  readonly persistError?: string;
}

/** Zero-length past_key.i / past_value.i: the cached graph with P = 0 is the plain forward pass. */
export function emptyPast(cfg: Gemma2Config): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  const empty = HostTensor.float32([1, cfg.numKeyValueHeads, 0, cfg.headDim], new Float32Array(0));
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    feeds[`past_key.${i}`] = empty;
    feeds[`past_value.${i}`] = empty;
  }
  return feeds;
}

/** Runs the prefix alone (batch 1, no past) and keeps its keys, values and last hidden states. */
export async function computePrefix(session: ModelSession, cfg: Gemma2Config, ids: readonly number[]): Promise<Omit<PrefixState, 'computed'>> {
  const P = ids.length;
  const wanted = ['last_hidden_state'];
  for (let i = 0; i < cfg.numHiddenLayers; i++) wanted.push(`present_key.${i}`, `present_value.${i}`);
  const out = await session.run(
    { input_ids: HostTensor.int64([1, P], [...ids]), attention_mask: HostTensor.int64([1, P], new Array(P).fill(1)), ...emptyPast(cfg) },
    wanted,
  );
  const f32 = (name: string) => {
    const t = out[name];
    if (!t || t.dtype !== 'float32') throw new Error(`Gemma2 prefix cache: the cached graph returned no float32 "${name}"`);
    return t as HostTensor<'float32'>;
  };
  const layers = Array.from({ length: cfg.numHiddenLayers }, (_, i) => i);
  const hidden = f32('last_hidden_state');
  return {
    ids: [...ids],
    keys: layers.map((i) => f32(`present_key.${i}`)),
    values: layers.map((i) => f32(`present_value.${i}`)),
    hidden: HostTensor.float32([P, cfg.hiddenSize], hidden.data), // [1, P, hidden] -> [P, hidden]
  };
}

/** True when every row of ids/mask [B, T] starts with the prefix's tokens, all unmasked, and has tokens after them. */
export function startsWithPrefix(prefix: PrefixState, ids: HostTensor, mask: HostTensor): boolean {
  const [b, t] = ids.shape;
  const P = prefix.ids.length;
  if (t <= P) return false;
  const id = ids.data as BigInt64Array;
  const m = mask.data as BigInt64Array;
  for (let r = 0; r < b; r++) {
    for (let j = 0; j < P; j++) {
      if (id[r * t + j] !== BigInt(prefix.ids[j]) || m[r * t + j] === 0n) return false;
    }
  }
  return true;
}

/** The tokens after the prefix [B, T - P] run against its cache; returns the full [B, T, hidden] (prefix rows copied). */
export async function encodeAfterPrefix(
  session: ModelSession,
  cfg: Gemma2Config,
  prefix: PrefixState,
  ids: HostTensor,
  mask: HostTensor,
): Promise<HostTensor<'float32'>> {
  const [b, t] = ids.shape;
  const P = prefix.ids.length;
  const n = t - P;
  const tail = (x: HostTensor) => {
    const src = x.data as BigInt64Array;
    const out = new BigInt64Array(b * n);
    for (let r = 0; r < b; r++) out.set(src.subarray(r * t + P, (r + 1) * t), r * n);
    return new HostTensor('int64', [b, n], out); // [B, T - P]
  };
  const feeds: Record<string, HostTensor> = { input_ids: tail(ids), attention_mask: tail(mask) };
  prefix.keys.forEach((k, i) => {
    feeds[`past_key.${i}`] = k;
    feeds[`past_value.${i}`] = prefix.values[i];
  });
  const states = (await session.run(feeds, ['last_hidden_state'])).last_hidden_state; // [B, T - P, hidden]
  const H = cfg.hiddenSize;
  if (states.dtype !== 'float32' || states.shape.join() !== [b, n, H].join()) {
    throw new Error(`Gemma2 prefix cache: last_hidden_state is ${states.dtype} [${states.shape.join(', ')}], expected float32 [${b}, ${n}, ${H}]`);
  }
  const full = new Float32Array(b * t * H);
  for (let r = 0; r < b; r++) {
    full.set(prefix.hidden.data, r * t * H);
    full.set((states.data as Float32Array).subarray(r * n * H, (r + 1) * n * H), (r * t + P) * H);
  }
  return HostTensor.float32([b, t, H], full); // [B, T, hidden]
}

function prefixKey(identity: PrefixCacheIdentity, cfg: Gemma2Config, ids: readonly number[]): { key: string; source: string; paths: string } {
  const sources = sourceIdentity(identity.sourceFiles);
  const settings = Object.keys(identity.settings)
    .sort()
    .map((k) => [k, identity.settings[k]]);
  const shape = [cfg.numHiddenLayers, cfg.numKeyValueHeads, cfg.headDim, cfg.hiddenSize];
  const source = createHash('sha256').update(JSON.stringify(sources)).digest('hex');
  const key = createHash('sha256').update(JSON.stringify({ format: PREFIX_FORMAT, source, settings, shape, ids })).digest('hex');
  return { key, source, paths: sources.map((s) => s.path).join('\n') };
}

function tensorNames(cfg: Gemma2Config): string[] {
  const names = ['hidden'];
  for (let i = 0; i < cfg.numHiddenLayers; i++) names.push(`key.${i}`, `value.${i}`);
  return names;
}

/** Reads a persisted prefix, or undefined when the file is absent, damaged or holds anything else. */
function readPrefixFile(file: string, key: string, cfg: Gemma2Config, ids: readonly number[]): Omit<PrefixState, 'computed'> | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const st = SafetensorsFile.open(file);
    if (st.metadata.format !== PREFIX_FORMAT || st.metadata.key !== key || st.tensors.size !== 1 + 2 * cfg.numHiddenLayers) return undefined;
    const P = ids.length;
    const kvShape = [1, cfg.numKeyValueHeads, P, cfg.headDim].join();
    const read = (name: string, shape: string) => {
      const info = st.tensors.get(name);
      if (!info || info.dtype !== 'float32' || info.shape.join() !== shape) throw new Error(`${name} missing or mis-shaped`);
      return st.read(name) as HostTensor<'float32'>;
    };
    const layers = Array.from({ length: cfg.numHiddenLayers }, (_, i) => i);
    return {
      ids: [...ids],
      hidden: read('hidden', [P, cfg.hiddenSize].join()),
      keys: layers.map((i) => read(`key.${i}`, kvShape)),
      values: layers.map((i) => read(`value.${i}`, kvShape)),
      file,
    };
  } catch {
    return undefined; // damaged (e.g. truncated): recomputed and rewritten
  }
}

/**
 * The prefix state for `ids`: read from a valid cache file when one exists, else computed with `compute` and
 * written (a write that fails leaves the state in memory and says why in persistError).
 */
export async function loadOrComputePrefix(
  identity: PrefixCacheIdentity,
  cfg: Gemma2Config,
  ids: readonly number[],
  compute: () => Promise<Omit<PrefixState, 'computed'>>,
): Promise<PrefixState> {
  if (identity.dirs.length === 0) return { ...(await compute()), computed: true };
  const { key, source, paths } = prefixKey(identity, cfg, ids);
  const name = `${LABEL}-${key.slice(0, 20)}.safetensors`;
  for (const dir of identity.dirs) {
    const found = readPrefixFile(path.join(dir, name), key, cfg, ids);
    if (found) return { ...found, computed: false };
  }
  const state = await compute();
  const dir = identity.dirs.find(writableFolder);
  if (!dir) return { ...state, computed: true, persistError: `none of the cache folders can be written: ${identity.dirs.join(', ')}` };
  const file = path.join(dir, name);
  try {
    fs.mkdirSync(dir, { recursive: true });
    const tensors = new Map<string, HostTensor>([['hidden', state.hidden]]);
    state.keys.forEach((k, i) => {
      tensors.set(`key.${i}`, k);
      tensors.set(`value.${i}`, state.values[i]);
    });
    const names = tensorNames(cfg);
    if (names.some((n) => !tensors.has(n))) throw new Error('internal: prefix tensors incomplete');
    writeSafetensors(file, tensors, { format: PREFIX_FORMAT, key, source, paths, tokens: String(ids.length) });
    removeStale(dir, file, paths, source);
    return { ...state, file, computed: true };
  } catch (e) {
    return { ...state, computed: true, persistError: `${file}: ${(e as Error).message}` };
  }
}

/** Removes prefix files of the same checkpoint paths made from an older version of those files. */
function removeStale(dir: string, keep: string, paths: string, source: string): void {
  for (const entry of fs.readdirSync(dir)) {
    const file = path.join(dir, entry);
    if (file === keep || !entry.startsWith(`${LABEL}-`) || !entry.endsWith('.safetensors')) continue;
    try {
      const st = SafetensorsFile.open(file);
      if (st.metadata.format === PREFIX_FORMAT && st.metadata.paths === paths && st.metadata.source !== source) fs.rmSync(file);
    } catch {
      // not one of ours, or unreadable: left alone
    }
  }
}
