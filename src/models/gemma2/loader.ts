// Loading a transformers Gemma-2 folder (config.json + model.safetensors or shards) into a runnable text encoder.
// ref: SANA.md §4.5
//
// Weight keys are those of Gemma2Model; a Gemma2ForCausalLM checkpoint (keys prefixed "model.", plus lm_head.weight)
// is accepted as well, its LM head ignored. Linear weights are used as stored (a bf16 file stays bf16 on disk and
// is cast in the graph; pass noConstantFolding, or lazyCasts, to keep that cast lazy) or quantized to int8 / int4 (once: the
// quantized weights are kept in a cache file that later loads memory-map, see src/nn/weight-cache.ts).
// With prefixCache the graph is the cached variant (past keys/values in, present out; see prefix-cache.ts):
// cachePrefix(ids) computes or reads the instruction prefix once, and encode() then runs only the tokens after it.

import * as path from 'node:path';
import { Graph } from '../../graph/graph.js';
import { HostTensor } from '../../io/host-tensor.js';
import { checkLayerCount } from '../../nn/layer-count.js';
import { WeightStore, findWeights } from '../../io/weights.js';
import {
  GeneratedWeightSink,
  ModelWeights,
  WeightQuantization,
  denseWeights,
  inMemorySink,
  integerGemmWeights,
  quantizedWeights,
  widenedWeights,
} from '../../nn/model-weights.js';
import { WeightCacheUnavailableError, defaultWeightCacheDirs, withWeightCache } from '../../nn/weight-cache.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { int8WeightSettings } from '../../nn/int8-linear.js';
import { Backend, ModelSession } from '../../runtime/backend.js';
import { compileGraph } from '../../runtime/compile.js';
import { defaultBackend } from '../../runtime/node-backend.js';
import { LoadOptions } from '../component.js';
import { Gemma2Config, readGemma2Config } from './config.js';
import { Gemma2GraphOptions, buildGemma2Graph } from './model.js';
import { sessionDevice } from '../../runtime/device.js';
import { PrefixCacheIdentity, PrefixState, computePrefix, emptyPast, encodeAfterPrefix, loadOrComputePrefix, startsWithPrefix } from './prefix-cache.js';

export interface Gemma2LoadOptions extends LoadOptions, Gemma2GraphOptions {
  /** Weight-only quantization of every linear layer (MatMulNBits, made at load time); default 'none'. */
  quantization?: WeightQuantization;
  /** Quantization block size along the input features (default 32). */
  quantBlockSize?: number;
  /** MatMulNBits accuracy level: 4 = int8 activations, 0 = float32 activations; default 4 for int8, 0 for int4. */
  quantAccuracyLevel?: 0 | 4;
  /**
   * int8 only: linear layers through the integer GEMM (per-channel int8 weights x per-token int8 activations,
   * MatMulInteger; src/nn/int8-linear.ts) instead of MatMulNBits. Default false.
   */
  integerGemm?: boolean;
  /**
   * Folder of the weight cache (quantized or widened weights made once, see src/nn/weight-cache.ts); default
   * `<checkpoint folder>/.sana-ts-cache/` when writable, else `$XDG_CACHE_HOME/sana-ts` or `~/.cache/sana-ts`.
   * null: quantize in memory at every load (nothing written; the session then holds a private copy of every weight).
   */
  weightCacheDir?: string | null;
  /**
   * Float32 compute from a 16-bit checkpoint without load-time folding: the weights are widened once into a cache
   * file (`gemma2-fp32-<key>.safetensors`, ~4 bytes per parameter; Gemma-2-2B: 9.3 GB) that later loads map, used
   * in place (prepack defaults to false here). Off by default (the bf16 weights are then cast in the graph, and ORT
   * folds the casts at load unless noConstantFolding). 'auto': the cache when the checkpoint holds 16-bit weights
   * and a cache folder has room for it (or the file exists already); otherwise the weights as stored, with a
   * notice in `loadNotices` saying why (float32 checkpoints need no cache and get no notice).
   */
  float32Cache?: boolean | 'auto';
  /**
   * For one-shot runs: when 16-bit weights end up cast in the graph (no float32 cache, no quantization), keep the
   * casts lazy (noConstantFolding) and the session without a memory arena, so each layer's float32 temporaries are
   * freed after use instead of a 2x copy of the weights being folded at load or held by the arena. Sessions that
   * map a float32 cache or quantized weights have no casts and keep the defaults (the arena reuses activations).
   */
  lazyCasts?: boolean;
  /**
   * Build the cached graph so that a fixed token prefix (the instruction) can be computed once and reused
   * (cachePrefix); prefixes persist in the weight cache folders (not with weightCacheDir null). Default false.
   */
  prefixCache?: boolean;
  /** Runtime (default: onnxruntime-node). */
  backend?: Backend;
}

export interface Gemma2Outputs {
  /** [B, T, hidden] float32 after the final norm. */
  readonly lastHiddenState: HostTensor<'float32'>;
  /** Every named output of the graph (last_hidden_state, hidden_states.i with outputHiddenStates). */
  readonly all: Record<string, HostTensor>;
}

/** How many distinct prefixes one encoder keeps (both dialects' instructions fit). */
const MAX_PREFIXES = 4;

export class Gemma2TextEncoder {
  private readonly prefixes = new Map<string, Promise<PrefixState>>();

  constructor(
    readonly config: Gemma2Config,
    readonly session: ModelSession,
    /** Quantized and float32Cache loads: the cache file the weights are mapped from, and whether this load wrote it. */
    readonly weightCache?: { readonly file: string; readonly created: boolean },
    /** Cached-graph loads (prefixCache): where prefixes persist and what keys them. */
    private readonly prefixIdentity?: PrefixCacheIdentity,
    /** What the load chose differently from what was asked, and why (float32Cache 'auto' without room). */
    readonly loadNotices: readonly string[] = [],
  ) {}

  /** Whether the session is the cached variant (cachePrefix has an effect). */
  get cachesPrefixes(): boolean {
    // the session of a graph built with pastKeyValues (prefixCache) takes past keys/values
    return this.session.inputNames.includes('past_key.0');
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames.filter((n) => !n.startsWith('present_'));
  }

  /**
   * Makes `ids` (BOS first) a cached prefix: its keys and values are read from the prefix cache file or computed
   * once, and later encode() calls whose every row starts with them run only the tokens after them. Returns the
   * state (null when this encoder was loaded without prefixCache).
   */
  async cachePrefix(ids: readonly number[]): Promise<PrefixState | null> {
    if (!this.cachesPrefixes) return null;
    if (ids.length === 0) throw new Error(`Gemma2 text encoder (${this.config.file}): cachePrefix needs at least one token`);
    this.checkInputs(HostTensor.int64([1, ids.length], [...ids]), HostTensor.int64([1, ids.length], new Array(ids.length).fill(1)));
    const id = ids.join(',');
    let state = this.prefixes.get(id);
    if (!state) {
      if (this.prefixes.size >= MAX_PREFIXES) this.prefixes.delete(this.prefixes.keys().next().value!);
      const identity = this.prefixIdentity ?? { dirs: [], sourceFiles: [], settings: {} };
      state = loadOrComputePrefix(identity, this.config, ids, () => computePrefix(this.session, this.config, ids));
      this.prefixes.set(id, state);
      state.catch(() => this.prefixes.delete(id));
    }
    return state;
  }

  /** Encodes input_ids and attention_mask, both int64 [B, T]. */
  async encode(inputIds: HostTensor, attentionMask: HostTensor): Promise<Gemma2Outputs> {
    this.checkInputs(inputIds, attentionMask);
    if (!this.cachesPrefixes) {
      const all = await this.session.run({ input_ids: inputIds, attention_mask: attentionMask });
      return { lastHiddenState: all.last_hidden_state as HostTensor<'float32'>, all };
    }
    // the longest held prefix that every row starts with; none: the cached graph with an empty past
    let best: PrefixState | undefined;
    for (const pending of this.prefixes.values()) {
      const p = await pending;
      if ((!best || p.ids.length > best.ids.length) && startsWithPrefix(p, inputIds, attentionMask)) best = p;
    }
    if (best) {
      const last = await encodeAfterPrefix(this.session, this.config, best, inputIds, attentionMask);
      return { lastHiddenState: last, all: { last_hidden_state: last } };
    }
    const all = await this.session.run({ input_ids: inputIds, attention_mask: attentionMask, ...emptyPast(this.config) }, this.outputNames);
    return { lastHiddenState: all.last_hidden_state as HostTensor<'float32'>, all };
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private checkInputs(ids: HostTensor, mask: HostTensor): void {
    const where = `Gemma2 text encoder (${this.config.file})`;
    for (const [name, t] of [['input_ids', ids], ['attention_mask', mask]] as const) {
      if (t.dtype !== 'int64' || t.shape.length !== 2) {
        throw new Error(`${where}: ${name} must be int64 [B, T], got ${t.dtype} [${t.shape.join(', ')}]`);
      }
    }
    if (ids.shape[0] !== mask.shape[0] || ids.shape[1] !== mask.shape[1]) {
      throw new Error(`${where}: input_ids [${ids.shape.join(', ')}] and attention_mask [${mask.shape.join(', ')}] differ in shape`);
    }
    if (ids.shape[1] === 0) throw new Error(`${where}: input_ids has no tokens`);
    const vocab = BigInt(this.config.vocabSize);
    for (const id of ids.data as BigInt64Array) {
      if (id < 0n || id >= vocab) throw new Error(`${where}: token id ${id} is outside the vocabulary [0, ${vocab})`);
    }
  }
}

/** Maps Gemma2Model names to a checkpoint's keys: "model." prefix for Gemma2ForCausalLM checkpoints. */
export function gemma2KeyDialect(store: WeightStore): { keyFor: (name: string) => string; ignore: (key: string) => boolean } {
  const prefixed = !store.has('embed_tokens.weight') && store.has('model.embed_tokens.weight');
  return {
    keyFor: prefixed ? (name) => `model.${name}` : (name) => name,
    ignore: (key) => key === 'lm_head.weight',
  };
}

export interface Gemma2Build {
  readonly config: Gemma2Config;
  readonly graph: Graph;
  /** The weight cache file the graph reads, and whether this load wrote it (quantized and float32Cache loads). */
  readonly weightCache?: { readonly file: string; readonly created: boolean };
  /** What keys a persisted instruction prefix of this load (cache folders, checkpoint files, numeric settings). */
  readonly prefixIdentity: PrefixCacheIdentity;
  /** See Gemma2TextEncoder.loadNotices. */
  readonly notices: readonly string[];
  /** Whether 16-bit weights are cast to float32 inside the graph (neither widened into a cache nor quantized). */
  readonly castsInGraph: boolean;
}

/** Whether any weight of the checkpoint is stored in 16 bits (what a float32 cache widens). */
function holdsHalfWeights(store: WeightStore): boolean {
  for (const name of store.names()) {
    const dtype = store.get(name).info.dtype;
    if (dtype === 'bfloat16' || dtype === 'float16') return true;
  }
  return false;
}

/** Builds the (uncompiled) graph for a Gemma-2 folder; throws one error listing every weight problem. */
export function buildGemma2FromFolder(dir: string, options: Gemma2LoadOptions = {}): Gemma2Build {
  const config = readGemma2Config(path.join(dir, 'config.json'));
  const store = WeightStore.open(findWeights(dir, ['model'], options.variant));
  checkLayerCount(store, 'layers', config.numHiddenLayers, config.file, 'num_hidden_layers'); // before building them
  const quantization = options.quantization ?? 'none';
  if (quantization !== 'none' && quantization !== 'int8' && quantization !== 'int4') {
    throw new Error(`loadGemma2: option quantization must be 'none', 'int8' or 'int4' (got ${JSON.stringify(quantization)})`);
  }
  const graphOptions: Gemma2GraphOptions = {
    ...options,
    pastKeyValues: Boolean(options.prefixCache || options.pastKeyValues),
    // ORT's WebGPU kernels refuse the zero-length pieces that reading the cache in place makes when a prefix is computed
    cachedKeysInPlace: options.cachedKeysInPlace ?? (sessionDevice(options.device) !== 'webgpu' && !options.backend?.rejectsZeroSizedTensors),
  };
  const build = (makeWeights: (binder: WeightBinder) => ModelWeights): Graph => {
    const binder = new WeightBinder(new Graph('gemma2_text_encoder'), store, gemma2KeyDialect(store));
    const graph = buildGemma2Graph(config, makeWeights(binder), graphOptions);
    binder.finish(`Gemma2Model (${dir})`);
    return graph;
  };
  const float32Cache = options.float32Cache ?? false;
  if (float32Cache !== true && float32Cache !== false && float32Cache !== 'auto') {
    throw new Error(`loadGemma2: option float32Cache must be true, false or 'auto' (got ${JSON.stringify(float32Cache)})`);
  }
  if (float32Cache === true && quantization !== 'none') {
    throw new Error(`loadGemma2: options float32Cache and quantization '${quantization}' exclude each other`);
  }
  const dirs = options.weightCacheDir === undefined || options.weightCacheDir === null ? defaultWeightCacheDirs(dir) : [options.weightCacheDir];
  // float32Cache, prepacking and lazy casts compute the same float32 products; quantization and softcap do not, nor
  // does another runtime (MLAS, wasm kernels, a GPU add up in other orders): a prefix is reused only where it was made
  const runtime = `${(options.backend ?? defaultBackend).name}/${sessionDevice(options.device)}`;
  const prefixIdentity: PrefixCacheIdentity = {
    dirs: options.weightCacheDir === null ? [] : dirs,
    sourceFiles: store.filePaths(),
    settings: {
      quantization,
      blockSize: quantization === 'none' ? 0 : options.quantBlockSize ?? 32,
      accuracyLevel: options.quantAccuracyLevel ?? 'default',
      integerGemm: quantization === 'int8' && Boolean(options.integerGemm),
      softcap: options.softcap !== false,
      runtime,
      ...(quantization === 'int8' && options.integerGemm ? int8WeightSettings() : {}),
    },
  };
  const notices: string[] = [];
  // 'auto' widens only what is stored in 16 bits, and only with a cache folder: a float32 checkpoint is used as it is
  const widen = quantization === 'none' && (float32Cache === true || (float32Cache === 'auto' && options.weightCacheDir !== null && holdsHalfWeights(store)));
  if (widen) {
    if (options.weightCacheDir === null) throw new Error('loadGemma2: option float32Cache needs a weight cache folder (weightCacheDir is null)');
    try {
      const cached = withWeightCache(
        { dirs, label: 'gemma2-fp32', sourceFiles: store.filePaths(), settings: {} },
        (sink) => build((binder) => widenedWeights(binder, sink)),
      );
      return { config, graph: cached.value, weightCache: { file: cached.file, created: cached.created }, prefixIdentity, notices, castsInGraph: false };
    } catch (e) {
      if (float32Cache !== 'auto' || !(e instanceof WeightCacheUnavailableError)) throw e;
      notices.push(`text encoder: no float32 weight cache (${e.message}); its 16-bit weights are widened at every run instead, which is slower`);
    }
  }
  if (quantization === 'none') {
    const graph = build((binder) => denseWeights(binder, { gatherWide: sessionDevice(options.device) === 'webgpu' }));
    return { config, graph, prefixIdentity, notices, castsInGraph: holdsHalfWeights(store) };
  }
  const quant = { bits: quantization === 'int8' ? 8 : 4, blockSize: options.quantBlockSize ?? 32, accuracyLevel: options.quantAccuracyLevel } as const;
  if (options.integerGemm && quantization !== 'int8') {
    throw new Error(`loadGemma2: option integerGemm needs quantization 'int8' (got '${quantization}')`);
  }
  const gemm = Boolean(options.integerGemm);
  const quantized = (sink: GeneratedWeightSink) =>
    build((binder) => (gemm ? integerGemmWeights(binder, sink, quant.blockSize) : quantizedWeights(binder, quant, sink)));
  if (options.weightCacheDir === null) return { config, graph: quantized(inMemorySink), prefixIdentity, notices, castsInGraph: false };
  const cached = withWeightCache(
    {
      dirs,
      label: `gemma2-${quantization}${gemm ? '-gemm' : ''}-b${quant.blockSize}`,
      sourceFiles: store.filePaths(),
      settings: gemm ? { bits: quant.bits, blockSize: quant.blockSize, linear: 'per-channel-int8', ...int8WeightSettings() } : { bits: quant.bits, blockSize: quant.blockSize },
    },
    quantized,
  );
  return { config, graph: cached.value, weightCache: { file: cached.file, created: cached.created }, prefixIdentity, notices, castsInGraph: false };
}

function quantization(options: Gemma2LoadOptions): WeightQuantization {
  return options.quantization ?? 'none';
}

/** Loads a Gemma-2 text encoder from a transformers folder (e.g. a SANA pipeline's text_encoder/). */
export async function loadGemma2(dir: string, options: Gemma2LoadOptions = {}): Promise<Gemma2TextEncoder> {
  const { config, graph, weightCache, prefixIdentity, notices, castsInGraph } = buildGemma2FromFolder(dir, options);
  const compiled = compileGraph(graph, { docString: `Gemma2Model from ${dir}` });
  // a float32 cache is used in place (memory-mapped) unless prepacking is asked for: measured as fast as the
  // prepacked copy on Gemma-2-2B (bench/text-encoder.ts) and loads in under a second instead of ~20 s
  const prepack = options.prepack ?? (weightCache && quantization(options) === 'none' ? false : undefined);
  const lazy = options.lazyCasts && castsInGraph ? { noConstantFolding: true, memoryArena: false } : {};
  const session = await (options.backend ?? defaultBackend).createSession(compiled, { ...options, prepack, ...lazy });
  // in-memory quantized weights were copied into the session: let their JavaScript copies go
  graph.memoryFiles.clear();
  return new Gemma2TextEncoder(config, session, weightCache, prefixIdentity, notices);
}
