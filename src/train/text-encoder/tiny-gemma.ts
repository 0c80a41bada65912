// The text encoder of the small bundled SANA model: a Gemma-2-architecture Gemma2Model with small sizes, frozen at a
// seeded initialisation, written as a transformers folder (config.json + model.safetensors) next to its word
// tokenizer (tokenizer.json, tokenizer_config.json, special_tokens_map.json). Both load through exactly the code of
// the real Gemma-2-2B (readGemma2Config, loadGemma2, GemmaTokenizer.fromFolder, encodePrompts). ref: SANA.md §4.5
//
// Initialisation: transformers' Gemma2PreTrainedModel._init_weights draws every Linear and the Embedding from
// normal(0, initializer_range = 0.02), zeroes the padding row, and Gemma's RMSNorm weights are offsets from 1, so
// zeros make every norm the plain RMS normalisation. That is what `transformersInit: true` writes. This encoder is
// never trained, though, and its features must tell captions apart, so by default two things differ:
// - Embedding std 1/sqrt(hidden) instead of 0.02. Gemma multiplies embeddings by sqrt(hidden), so at 0.02 a token's
//   own vector enters the residual stream at RMS 0.23, while every attention and MLP output enters post-normed at
//   RMS 1: after two layers the word itself is a small part of its state. At 1/sqrt(hidden) it enters at RMS 1.
// - Positional attention heads (attention_bias: true, a Gemma2Config option): random q/k weights give attention
//   logits spread by ~0.05, so every query averages its whole causal prefix, which after the ~200-token instruction
//   is nearly the same for every prompt position; "a red circle left of a blue square" and "a blue circle left of a
//   red square" then differ at "square" by ~1e-6 in cosine distance. Instead the q/k biases make each head attend by
//   relative position through RoPE (the weights stay random, so content still modulates the scores): with k bias
//   (beta, 0) on each rotary pair and q bias a_j (cos phi_j, sin phi_j), the logit of query i on key j is
//   a_j beta cos((i - j) theta_j + phi_j) summed over the head's frequencies, which peaks at i - j = d0 for
//   phi_j = -d0 theta_j. POSITIONAL_HEADS lists the heads: the previous token, self and previous, the last ~6 tokens,
//   the last ~15 tokens; so "circle" carries "red" and "square" carries "blue". v and o biases are zeros.
// - Optionally (`composable: true`, the default model's final encoder) the encoder mixes words linearly: q_proj and
//   k_proj weights are zero, so the heads attend by relative position only, and post_feedforward_layernorm weights
//   are -1, so the MLP branch enters the residual stream times (1 + -1) = 0. Random MLPs and content-dependent
//   attention hash a colour and a shape next to each other into a vector of their own: the features of "a purple
//   triangle" are then not the features of "purple" plus those of "triangle", and a DiT that never saw that pair
//   cannot compose it (the analogy f(purple triangle) ~ f(purple circle) + f(red triangle) - f(red circle) is off by
//   ~49% of the difference it predicts at the caption's last six positions; 9% with composable weights, where only
//   the RMS norms are non-linear).
// - Optionally (`identityChannels: n`) the first n hidden channels carry each token's own embedding alone: the
//   post-attention and post-feed-forward norm weights are -1 there, so no mixing writes into them. The DiT can then
//   read "which word is this" without its neighbours' traces (a held-out "purple triangle" has the "triangle" of
//   every trained triangle in those channels), and the mix that binds neighbours lives in the other channels.
// - Optionally (`markedTokens`) one content head marks a set of tokens (the relation words): layer 0's query head
//   MARKER_HEAD ("recent", the last ~6 tokens) adds `logit` to its scores on the keys of `marked` tokens and 0 on
//   those of `unmarked` ones, through the lowest rotary frequency, which turns by under 0.06 rad over 300 tokens, so
//   the boost does not depend on distance. The k weight on that rotary channel is the minimum-norm solution of
//   n_t . w = [t marked] over the listed tokens' normalised embeddings n_t (exact while they number at most
//   hidden_size). The words after "left of" then carry "left" at ~0.97 instead of ~0.05 of that head, so the
//   reference object of a relation says which side it is on; positional falloff keeps an instruction's "below"
//   12 tokens before the prompt out of the caption's first words.
// test/tiny-text-encoder.test.ts measures what the choices buy.
//
// Draw order, one TorchGenerator(seed) for all (TorchGenerator + torchRandn reproduce torch's CPU generator, so on
// x86-64 g = torch.Generator().manual_seed(seed); w = torch.randn(shape, generator=g) * std in this order gives the
// same floats): embed_tokens (padding row then zeroed), then per layer q_proj, k_proj, v_proj, o_proj, gate_proj,
// up_proj, down_proj. Norm weights and biases take no draws. Composable weights are drawn in the same order (the
// zeroed q/k weights too), so their embedding table and v/o projections equal those of the plain seeded encoder.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostTensor } from '../../io/host-tensor.js';
import { writeBytesAtomic } from '../../io/atomic-write.js';
import { writeSafetensors } from '../../io/safetensors.js';
import { inverseFrequencies } from '../../models/gemma2/rotary.js';
import { TorchGenerator, TorchSeed, torchRandn } from '../../random/torch-rng.js';
import { WordTokenizerFiles, buildShapesTokenizer, tokenizerFileText } from './word-tokenizer.js';

export interface SeededGemma2Options {
  /** Seed of the torch CPU generator every weight is drawn from. */
  seed: TorchSeed;
  /** Rows of the embedding table: the tokenizer's vocabulary size. */
  vocabSize: number;
  /** Default 128. */
  hiddenSize?: number;
  /** Default 2. */
  numHiddenLayers?: number;
  /** Default 4. */
  numAttentionHeads?: number;
  /** Default 2. */
  numKeyValueHeads?: number;
  /** Default 32. */
  headDim?: number;
  /** Default 256. */
  intermediateSize?: number;
  /** Default 8192. */
  maxPositionEmbeddings?: number;
  /** Std of the linear weights (config initializer_range); default 0.02. */
  initializerRange?: number;
  /** Std of the embedding rows; default 1/sqrt(hiddenSize), initializerRange with transformersInit. */
  embeddingStd?: number;
  /** Std of q_proj and k_proj weights; default initializerRange, 0 with composable. */
  queryKeyStd?: number;
  /** Linear word mixing (see the header): position-only attention (queryKeyStd 0) and the MLP branch scaled by 0. */
  composable?: boolean;
  /** Relative-position attention heads through q/k biases (see the header); default true, false with transformersInit. */
  positionalHeads?: boolean;
  /** Exactly transformers' initialisation: every weight from normal(0, initializerRange), no biases. */
  transformersInit?: boolean;
  /** The first n hidden channels carry only the token's own embedding (see the header); default 0. */
  identityChannels?: number;
  /** A content head that marks tokens (see the header); needs the positional heads. */
  markedTokens?: MarkedTokens;
}

/** Token ids whose keys get `logit` added in the marker head, and ids whose keys must get 0 added. */
export interface MarkedTokens {
  readonly marked: readonly number[];
  readonly unmarked: readonly number[];
  readonly logit: number;
}

/** What the weights were made with, as recorded in the safetensors metadata. */
export interface SeededGemma2Init {
  readonly seed: string;
  readonly initializerRange: number;
  readonly embeddingStd: number;
  readonly queryKeyStd: number;
  readonly positionalHeads: boolean;
  /** The MLP branch is multiplied by 0 (post_feedforward_layernorm weights -1). */
  readonly feedForwardOff: boolean;
  /** Leading hidden channels no attention or MLP output writes into. */
  readonly identityChannels: number;
  /** Logit of the marker head on marked tokens, 0 without one. */
  readonly markerLogit: number;
}

/** One relative-position head: the rotary frequencies in [thetaMin, thetaMax], peak at offset d0, logit gain. */
export interface PositionalHead {
  readonly name: string;
  readonly thetaMin: number;
  readonly thetaMax: number;
  /** Query position minus key position where the logit peaks (fractional: between two tokens). */
  readonly d0: number;
  /** Logit at the peak minus its mean over far-away keys. */
  readonly strength: number;
}

/**
 * Query head h of every layer gets POSITIONAL_HEADS[h % 4]. With head_dim 32 and rope_theta 10000 (frequencies
 * 10^(-j/4)), softmax weights at a query 200 tokens into the text, by distance 0, 1, 2, ...: previous 0.07 0.86
 * 0.07; selfAndPrevious 0.45 0.45 0.04; recent 0.21 0.23 0.21 0.16 0.10 0.05; phrase ~0.1 each over ~15 tokens.
 */
export const POSITIONAL_HEADS: readonly PositionalHead[] = [
  { name: 'previous', thetaMin: 0.05, thetaMax: 1.01, d0: 1, strength: 30 },
  { name: 'selfAndPrevious', thetaMin: 0.09, thetaMax: 0.6, d0: 0.5, strength: 30 },
  { name: 'recent', thetaMin: 0.03, thetaMax: 0.2, d0: 1, strength: 20 },
  { name: 'phrase', thetaMin: 0.009, thetaMax: 0.06, d0: 0, strength: 16 },
];

/**
 * Magnitude of the k bias on each rotary pair. The q bias is then strength * sqrt(scalar) / (n * beta) per pair;
 * beta 4 balances the two content cross terms (q bias . k content, q content . k bias) at ~0.7 logit std each.
 */
const KEY_BIAS = 4;

export const TINY_GEMMA2_PAD_TOKEN_ID = 0;

const FLOAT_KEYS = new Set(['attention_dropout', 'attn_logit_softcapping', 'final_logit_softcapping', 'initializer_range', 'rms_norm_eps', 'rope_theta']);

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`writeSeededGemma2: option ${what} must be a positive integer (got ${v})`);
  return v;
}

function positiveNumber(value: number | undefined, fallback: number, what: string, zeroAllowed = false): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v > 0 || (zeroAllowed && v === 0)) || !Number.isFinite(v)) {
    throw new Error(`writeSeededGemma2: option ${what} must be a ${zeroAllowed ? 'non-negative' : 'positive'} number (got ${v})`);
  }
  return v;
}

/** The initialisation an options object resolves to. */
export function seededGemma2Init(options: SeededGemma2Options): SeededGemma2Init {
  const initializerRange = positiveNumber(options.initializerRange, 0.02, 'initializerRange');
  const hiddenSize = positiveInt(options.hiddenSize, 128, 'hiddenSize');
  const plain = options.transformersInit === true;
  if (plain && options.positionalHeads === true) throw new Error('writeSeededGemma2: options transformersInit and positionalHeads exclude each other');
  const composable = options.composable === true;
  if (composable && (plain || options.positionalHeads === false)) {
    throw new Error('writeSeededGemma2: option composable needs the positional heads (it excludes transformersInit and positionalHeads: false)');
  }
  if (composable && options.queryKeyStd !== undefined && options.queryKeyStd !== 0) {
    throw new Error(`writeSeededGemma2: option composable attends by position only, so queryKeyStd must be 0 or left out (got ${options.queryKeyStd})`);
  }
  return {
    seed: String(new TorchGenerator(options.seed).initialSeed()),
    initializerRange,
    embeddingStd: positiveNumber(options.embeddingStd, plain ? initializerRange : 1 / Math.sqrt(hiddenSize), 'embeddingStd'),
    queryKeyStd: positiveNumber(options.queryKeyStd, composable ? 0 : initializerRange, 'queryKeyStd', true),
    positionalHeads: options.positionalHeads ?? !plain,
    feedForwardOff: composable,
    identityChannels: identityChannels(options, hiddenSize),
    markerLogit: markerLogit(options, plain || options.positionalHeads === false),
  };
}

function identityChannels(options: SeededGemma2Options, hiddenSize: number): number {
  const n = options.identityChannels ?? 0;
  if (!Number.isSafeInteger(n) || n < 0 || n >= hiddenSize) {
    throw new Error(`writeSeededGemma2: option identityChannels must be an integer in [0, hiddenSize ${hiddenSize}) (got ${n})`);
  }
  return n;
}

function markerLogit(options: SeededGemma2Options, noPositionalHeads: boolean): number {
  const m = options.markedTokens;
  if (!m) return 0;
  if (noPositionalHeads) throw new Error('writeSeededGemma2: option markedTokens needs the positional heads (it excludes transformersInit and positionalHeads: false)');
  if (!(Number.isFinite(m.logit) && m.logit > 0)) throw new Error(`writeSeededGemma2: markedTokens.logit must be a positive number (got ${m.logit})`);
  if (m.marked.length === 0) throw new Error('writeSeededGemma2: markedTokens.marked is empty');
  return m.logit;
}

/** The config.json of the seeded encoder: every key transformers 4.47 writes for a Gemma2Model. */
export function seededGemma2Config(options: SeededGemma2Options): Record<string, unknown> {
  const init = seededGemma2Init(options);
  const hiddenSize = positiveInt(options.hiddenSize, 128, 'hiddenSize');
  const numAttentionHeads = positiveInt(options.numAttentionHeads, 4, 'numAttentionHeads');
  const numKeyValueHeads = positiveInt(options.numKeyValueHeads, 2, 'numKeyValueHeads');
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new Error(`writeSeededGemma2: numKeyValueHeads (${numKeyValueHeads}) must divide numAttentionHeads (${numAttentionHeads})`);
  }
  const headDim = positiveInt(options.headDim, 32, 'headDim');
  if (headDim % 2 !== 0) throw new Error(`writeSeededGemma2: option headDim must be even (got ${headDim})`);
  const vocabSize = positiveInt(options.vocabSize, 0, 'vocabSize');
  if (vocabSize < 3) throw new Error(`writeSeededGemma2: option vocabSize must hold <pad>, <eos> and <bos> (got ${vocabSize})`);
  return {
    architectures: ['Gemma2Model'],
    attention_bias: init.positionalHeads,
    attention_dropout: 0,
    attn_logit_softcapping: 50,
    bos_token_id: 2,
    cache_implementation: 'hybrid',
    eos_token_id: 1,
    final_logit_softcapping: 30,
    head_dim: headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: hiddenSize,
    initializer_range: init.initializerRange,
    intermediate_size: positiveInt(options.intermediateSize, 256, 'intermediateSize'),
    max_position_embeddings: positiveInt(options.maxPositionEmbeddings, 8192, 'maxPositionEmbeddings'),
    model_type: 'gemma2',
    num_attention_heads: numAttentionHeads,
    num_hidden_layers: positiveInt(options.numHiddenLayers, 2, 'numHiddenLayers'),
    num_key_value_heads: numKeyValueHeads,
    pad_token_id: TINY_GEMMA2_PAD_TOKEN_ID,
    query_pre_attn_scalar: headDim,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    sliding_window: 4096,
    torch_dtype: 'float32',
    transformers_version: '4.47.0',
    use_cache: true,
    vocab_size: vocabSize,
  };
}

/** Python's repr of a float (what json.dumps writes): "50.0", "0.02", "1e-06". */
function pythonFloat(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x}.0`;
  const [mantissa, exponent] = x.toExponential().split('e');
  const exp = Number(exponent);
  if (exp < -4 || exp >= 16) return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(x);
}

/** config.json text as transformers writes it: sorted keys, 2-space indent, float-typed keys as Python floats. */
export function configFileText(config: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
  const text = JSON.stringify(sorted, null, 2).replace(/^( {2}"(\w+)": )(-?[\d.e+-]+)(,?)$/gm, (line, head: string, key: string, num: string, comma: string) =>
    FLOAT_KEYS.has(key) ? `${head}${pythonFloat(Number(num))}${comma}` : line,
  );
  return text + '\n';
}

/**
 * q_proj and k_proj biases of the positional heads (the same in every layer): k bias (KEY_BIAS, 0) on each rotary
 * pair (j, j + D/2) of every KV head, q bias a (cos phi_j, sin phi_j) on the head's frequencies, phi_j = -d0 theta_j.
 */
export function positionalHeadBiases(config: Record<string, unknown>): { q: Float32Array; k: Float32Array } {
  const heads = config.num_attention_heads as number;
  const kvHeads = config.num_key_value_heads as number;
  const headDim = config.head_dim as number;
  const half = headDim / 2;
  const theta = inverseFrequencies(headDim, config.rope_theta as number);
  const k = new Float32Array(kvHeads * headDim);
  for (let g = 0; g < kvHeads; g++) k.fill(KEY_BIAS, g * headDim, g * headDim + half);
  const q = new Float32Array(heads * headDim);
  for (let h = 0; h < heads; h++) {
    const spec = POSITIONAL_HEADS[h % POSITIONAL_HEADS.length];
    const band = [...theta.keys()].filter((j) => theta[j] >= spec.thetaMin && theta[j] <= spec.thetaMax);
    if (band.length === 0) continue; // a head_dim / rope_theta with no frequency in this band: a content head
    const amplitude = (spec.strength * Math.sqrt(config.query_pre_attn_scalar as number)) / (band.length * KEY_BIAS);
    for (const j of band) {
      const phase = -spec.d0 * theta[j];
      q[h * headDim + j] = amplitude * Math.cos(phase);
      q[h * headDim + half + j] = amplitude * Math.sin(phase);
    }
  }
  return { q, k };
}

function scaled(t: HostTensor<'float32'>, std: number): HostTensor<'float32'> {
  const s = Math.fround(std);
  const d = t.data;
  if (s === 0) {
    d.fill(0); // +0, not the -0 of negative draws times 0
    return t;
  }
  for (let i = 0; i < d.length; i++) d[i] = Math.fround(d[i] * s);
  return t;
}

/** Gemma2Model weights (transformers names) drawn from the seed in the documented order. */
export function seededGemma2Weights(options: SeededGemma2Options): Map<string, HostTensor> {
  const c = seededGemma2Config(options);
  const init = seededGemma2Init(options);
  const hidden = c.hidden_size as number;
  const heads = c.num_attention_heads as number;
  const kvHeads = c.num_key_value_heads as number;
  const headDim = c.head_dim as number;
  const inter = c.intermediate_size as number;
  const vocab = c.vocab_size as number;
  const generator = new TorchGenerator(options.seed);
  const draw = (shape: number[], std: number) => scaled(torchRandn(shape, generator), std);
  const zeros = (n: number) => HostTensor.float32([n]);
  const biases = init.positionalHeads ? positionalHeadBiases(c) : undefined;

  const weights = new Map<string, HostTensor>();
  const embed = draw([vocab, hidden], init.embeddingStd); // [vocab, hidden]
  embed.data.fill(0, TINY_GEMMA2_PAD_TOKEN_ID * hidden, (TINY_GEMMA2_PAD_TOKEN_ID + 1) * hidden);
  weights.set('embed_tokens.weight', embed);
  for (let i = 0; i < (c.num_hidden_layers as number); i++) {
    const p = `layers.${i}.`;
    weights.set(`${p}self_attn.q_proj.weight`, draw([heads * headDim, hidden], init.queryKeyStd));
    weights.set(`${p}self_attn.k_proj.weight`, draw([kvHeads * headDim, hidden], init.queryKeyStd));
    weights.set(`${p}self_attn.v_proj.weight`, draw([kvHeads * headDim, hidden], init.initializerRange));
    weights.set(`${p}self_attn.o_proj.weight`, draw([hidden, heads * headDim], init.initializerRange));
    weights.set(`${p}mlp.gate_proj.weight`, draw([inter, hidden], init.initializerRange));
    weights.set(`${p}mlp.up_proj.weight`, draw([inter, hidden], init.initializerRange));
    weights.set(`${p}mlp.down_proj.weight`, draw([hidden, inter], init.initializerRange));
    if (biases) {
      weights.set(`${p}self_attn.q_proj.bias`, HostTensor.float32([heads * headDim], biases.q.slice()));
      weights.set(`${p}self_attn.k_proj.bias`, HostTensor.float32([kvHeads * headDim], biases.k.slice()));
      weights.set(`${p}self_attn.v_proj.bias`, zeros(kvHeads * headDim));
      weights.set(`${p}self_attn.o_proj.bias`, zeros(hidden));
    }
    for (const norm of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm']) weights.set(`${p}${norm}.weight`, zeros(hidden));
    // Gemma's norms scale by (1 + weight): -1 multiplies the MLP's output by 0
    weights.set(`${p}post_feedforward_layernorm.weight`, init.feedForwardOff ? HostTensor.float32([hidden], new Float32Array(hidden).fill(-1)) : zeros(hidden));
  }
  weights.set('norm.weight', zeros(hidden));
  if (init.identityChannels > 0) {
    for (let i = 0; i < (c.num_hidden_layers as number); i++) {
      for (const norm of ['post_attention_layernorm', 'post_feedforward_layernorm']) {
        // (1 + -1) = 0: this branch adds nothing to the leading channels
        (weights.get(`layers.${i}.${norm}.weight`)!.data as Float32Array).fill(-1, 0, init.identityChannels);
      }
    }
  }
  if (options.markedTokens) addTokenMarker(weights, c, options.markedTokens);
  return weights;
}

/** Query head of layer 0 that marks tokens: "recent" (POSITIONAL_HEADS[2]), whose ~6-token reach spans a phrase. */
export const MARKER_HEAD = 2;

/**
 * The marker head of the header: on the lowest rotary frequency's first channel j of layer 0, the KV head's k bias
 * becomes 0 (no positional head uses that frequency, and a constant there would push logits into the soft cap),
 * its k weight row becomes w with n_t . w = [t marked], and the marker head's q bias becomes logit * sqrt(scalar),
 * so the score gains logit * (n_t . w) * cos((i - j) theta_min).
 */
function addTokenMarker(weights: Map<string, HostTensor>, c: Record<string, unknown>, m: MarkedTokens): void {
  const hidden = c.hidden_size as number;
  const headDim = c.head_dim as number;
  const heads = c.num_attention_heads as number;
  const kvHead = Math.floor(MARKER_HEAD / (heads / (c.num_key_value_heads as number)));
  const vocab = c.vocab_size as number;
  if (MARKER_HEAD >= heads) throw new Error(`writeSeededGemma2: markedTokens needs at least ${MARKER_HEAD + 1} attention heads (got ${heads})`);
  const marked = new Set(m.marked);
  const ids = [...new Set([...m.marked, ...m.unmarked])];
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 0 || id >= vocab) throw new Error(`writeSeededGemma2: markedTokens id ${id} is outside the vocabulary [0, ${vocab})`);
  }
  const both = m.unmarked.find((id) => marked.has(id));
  if (both !== undefined) throw new Error(`writeSeededGemma2: markedTokens id ${both} is both marked and unmarked`);
  if (ids.length > hidden) throw new Error(`writeSeededGemma2: markedTokens lists ${ids.length} tokens; at most hidden_size (${hidden}) can be fitted exactly`);
  const embed = weights.get('embed_tokens.weight')!.data as Float32Array; // [vocab, hidden]
  const eps = c.rms_norm_eps as number;
  // n_t: the embedding as layer 0's input norm sees it (times sqrt(hidden), then RMS-normalised)
  const rows = ids.map((id) => {
    const e = Array.from(embed.subarray(id * hidden, (id + 1) * hidden), (v) => v * Math.sqrt(hidden));
    const rms = Math.sqrt(e.reduce((a, v) => a + v * v, 0) / hidden + eps);
    return e.map((v) => v / rms);
  });
  const target = ids.map((id) => (marked.has(id) ? 1 : 0));
  const w = minimumNormSolution(rows, target, 'writeSeededGemma2: markedTokens');
  const j = headDim / 2 - 1; // the lowest rotary frequency (theta_min), first channel of its pair
  const p = 'layers.0.self_attn.';
  (weights.get(`${p}k_proj.bias`)!.data as Float32Array)[kvHead * headDim + j] = 0;
  (weights.get(`${p}k_proj.weight`)!.data as Float32Array).set(w, (kvHead * headDim + j) * hidden); // [kv * headDim, hidden] row
  (weights.get(`${p}q_proj.bias`)!.data as Float32Array)[MARKER_HEAD * headDim + j] = m.logit * Math.sqrt(c.query_pre_attn_scalar as number);
}

/** The w of least norm with rows . w = target (rows independent): w = A^T (A A^T)^-1 target, in float64. */
export function minimumNormSolution(rows: readonly (readonly number[])[], target: readonly number[], what: string): Float32Array {
  const m = rows.length;
  const n = rows[0].length;
  // Gauss-Jordan on [A A^T | target] with partial pivoting
  const g = rows.map((a, r) => [...rows.map((b) => a.reduce((s, v, k) => s + v * b[k], 0)), target[r]]);
  for (let col = 0; col < m; col++) {
    let pivot = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(g[r][col]) > Math.abs(g[pivot][col])) pivot = r;
    if (Math.abs(g[pivot][col]) < 1e-9 * Math.abs(g[0][0])) throw new Error(`${what}: the listed tokens' embeddings are linearly dependent`);
    [g[col], g[pivot]] = [g[pivot], g[col]];
    for (let r = 0; r < m; r++) {
      if (r === col) continue;
      const f = g[r][col] / g[col][col];
      for (let k = col; k <= m; k++) g[r][k] -= f * g[col][k];
    }
  }
  const alpha = g.map((row, r) => row[m] / row[r]);
  const w = new Float32Array(n);
  for (let k = 0; k < n; k++) w[k] = rows.reduce((s, a, r) => s + alpha[r] * a[k], 0);
  return w;
}

/** Writes config.json and model.safetensors of the seeded Gemma2Model into `dir` (created if missing). */
export function writeSeededGemma2(dir: string, options: SeededGemma2Options): { config: Record<string, unknown>; init: SeededGemma2Init } {
  const config = seededGemma2Config(options);
  const init = seededGemma2Init(options);
  fs.mkdirSync(dir, { recursive: true });
  writeBytesAtomic(path.join(dir, 'config.json'), Buffer.from(configFileText(config), 'utf8'));
  writeSafetensors(path.join(dir, 'model.safetensors'), seededGemma2Weights(options), { format: 'pt', init: JSON.stringify(init) });
  return { config, init };
}

/** Writes the three tokenizer files into `dir` (created if missing). */
export function writeTokenizerFolder(dir: string, files: WordTokenizerFiles): void {
  fs.mkdirSync(dir, { recursive: true });
  const write = (name: string, json: object) => writeBytesAtomic(path.join(dir, name), Buffer.from(tokenizerFileText(json), 'utf8'));
  write('tokenizer.json', files.tokenizerJson);
  write('tokenizer_config.json', files.tokenizerConfigJson);
  write('special_tokens_map.json', files.specialTokensMapJson);
}

/** Writes the shapes model's tokenizer folder; returns its files (vocabSize for the text encoder). */
export function writeShapesTokenizer(dir: string): WordTokenizerFiles {
  const files = buildShapesTokenizer();
  writeTokenizerFolder(dir, files);
  return files;
}
