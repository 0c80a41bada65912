// From prompt strings to the caption embeddings and masks the SANA transformer takes. ref: SANA.md §4.3, §4.4, §4.6
//
// Positive prompts: preprocess (§4.6), prepend the Complex Human Instruction, tokenize to
// L_all = (ids of the instruction alone, BOS included) + maxSequenceLength - 2, encode with Gemma, then keep
// position 0 (BOS) and the last maxSequenceLength - 1 positions of the hidden states and of the mask. The
// instruction's trailing "▁" merges into the prompt's first word, so the kept window is BOS + the prompt's tokens
// (computed WITH the instruction in causal context) + padding; prompt tokens beyond the window are dropped.
// Negative prompts: no instruction, maxSequenceLength ids, no re-selection.
// The instruction's tokens before its trailing "▁" are the same at the same positions for every prompt: a text
// encoder that can cache a prefix (cachePrefix, see src/models/gemma2/prefix-cache.ts) gets them first.
//
// Dialects: 'diffusers' (default; SanaPipeline): single-quoted instruction, prompts lower-cased and stripped, the
// negative embedding with its own mask. 'nvlabs' (the original repo): double-quoted instruction, no lower-casing
// ("--ar h:w", "--aspect_ratio h:w", "--hw h:w" flags removed, then stripped), and the unconditional branch uses
// the POSITIVE prompt's mask on the null embedding (negative_prompt_attention_mask = prompt_attention_mask).

import { HostTensor } from '../io/host-tensor.js';
import { LIMITS, MIN_SEQUENCE_LENGTH, checkBounded, checkPromptLength } from '../limits.js';
import { PromptDialect, complexHumanInstruction } from './complex-human-instruction.js';
import { GemmaTokenizer, TokenizedBatch } from './tokenizer.js';

/** What prompt encoding needs from a text encoder (Gemma2TextEncoder fits). */
export interface TextEncoderLike {
  encode(inputIds: HostTensor, attentionMask: HostTensor): Promise<{ lastHiddenState: HostTensor }>;
  /** Optional: compute once the states of a token prefix that later inputs start with (results must not change). */
  cachePrefix?(ids: readonly number[]): Promise<unknown>;
}

export interface EncodePromptsOptions {
  /** Negative prompt(s): one string for every prompt, or one per prompt; default "". */
  negative?: string | readonly string[];
  /** Caption length the transformer gets; default 300. */
  maxSequenceLength?: number;
  /** Default 'diffusers'. */
  dialect?: PromptDialect;
  /** Instruction lines overriding the dialect's; [] = no instruction (then L_all = maxSequenceLength). */
  instruction?: readonly string[];
  /**
   * Run the text encoder only up to the last real token of the batch and return zeros at the padding positions
   * after it (default: on in the 'diffusers' dialect, off in 'nvlabs'). Exact for what the transformer sees: Gemma
   * is causal, so real tokens' states do not depend on the padding after them, and the transformer gives padding
   * positions a softmax weight of exactly 0 (additive -10000 bias) when each embedding comes with its own mask.
   * The 'nvlabs' dialect applies the positive mask to the null embedding, so its padding states matter there.
   * Saves most of the work: a short prompt is ~10 tokens of 300 (plus the instruction), the empty negative prompt 1.
   */
  trimPadding?: boolean;
  /** Called with each warning (also returned in `warnings`). */
  onWarning?: (message: string) => void;
}

export interface EncodedPrompts {
  /** float32 [B, maxSequenceLength, hidden]. */
  readonly promptEmbeds: HostTensor<'float32'>;
  /** int64 [B, maxSequenceLength]. */
  readonly promptAttentionMask: HostTensor<'int64'>;
  /** float32 [B, maxSequenceLength, hidden]. */
  readonly negativePromptEmbeds: HostTensor<'float32'>;
  /** int64 [B, maxSequenceLength]; in the 'nvlabs' dialect a copy of promptAttentionMask. */
  readonly negativePromptAttentionMask: HostTensor<'int64'>;
  /** E.g. prompts truncated to the window. */
  readonly warnings: readonly string[];
}

export interface PreparedPrompts {
  /** Positive prompts with the instruction: ids and mask [B, L_all]. */
  readonly prompt: TokenizedBatch;
  /** Positions of the L_all kept for the transformer: [0, L_all - maxSequenceLength + 1, ..., L_all - 1]. */
  readonly selectIndex: readonly number[];
  /** Negative prompts: ids and mask [B, maxSequenceLength]. */
  readonly negative: TokenizedBatch;
  /** Ids of the instruction alone, BOS included (0 without instruction). */
  readonly instructionIds: number;
  /** Those ids without the last one (the "▁" that merges into the prompt): what every prompt row starts with. */
  readonly instructionPrefix: readonly number[];
  readonly warnings: readonly string[];
}

/** The original's size flags are suffixes: the prompt ends where the first one starts. */
const SIZE_FLAG = /--(?:ar|aspect_ratio|hw)(?![\w-])/;

/** Prompt preprocessing of a dialect (§4.6; diffusers' clean_caption=True cleaner is not implemented). */
export function preprocessPrompt(prompt: string, dialect: PromptDialect): string {
  if (dialect === 'diffusers') return prompt.toLowerCase().trim();
  const flag = prompt.search(SIZE_FLAG);
  return (flag >= 0 ? prompt.slice(0, flag) : prompt).trim();
}

function asList(value: string | readonly string[], count: number, what: string): string[] {
  const list = typeof value === 'string' ? new Array<string>(count).fill(value) : [...value];
  if (list.length !== count) throw new Error(`encodePrompts: ${what} has ${list.length} entries for ${count} prompts`);
  return list;
}

/** Tokenization and window selection, without running the text encoder. */
export function preparePrompts(prompts: string | readonly string[], options: EncodePromptsOptions, tokenizer: GemmaTokenizer): PreparedPrompts {
  const list = typeof prompts === 'string' ? [prompts] : [...prompts];
  if (list.length === 0) throw new Error('encodePrompts: no prompts given');
  const dialect = options.dialect ?? 'diffusers';
  if (dialect !== 'diffusers' && dialect !== 'nvlabs') {
    throw new Error(`encodePrompts: option dialect must be 'diffusers' or 'nvlabs' (got ${JSON.stringify(dialect)})`);
  }
  const maxSequenceLength = options.maxSequenceLength ?? 300;
  checkBounded('encodePrompts: option maxSequenceLength', maxSequenceLength, LIMITS.maxSequenceLength, MIN_SEQUENCE_LENGTH);
  const negatives = asList(options.negative ?? '', list.length, 'option negative');
  // Bounded before tokenizing: text past the window is tokenized only to count it, so its length is the cost.
  checkBounded('encodePrompts: the number of prompts', list.length, LIMITS.prompts);
  list.forEach((p, i) => checkPromptLength(`encodePrompts: prompt ${i}`, typeof p === 'string' ? p : ''));
  negatives.forEach((p, i) => checkPromptLength(`encodePrompts: negative prompt ${i}`, typeof p === 'string' ? p : ''));
  const lines = options.instruction ?? undefined;
  if (lines !== undefined && (!Array.isArray(lines) || !lines.every((l) => typeof l === 'string'))) {
    throw new Error('encodePrompts: option instruction must be a list of strings');
  }
  const instruction = lines && lines.length === 0 ? '' : complexHumanInstruction(lines ?? dialect);
  checkPromptLength('encodePrompts: option instruction', instruction);
  const texts = list.map((p) => instruction + preprocessPrompt(p, dialect));

  const instructionTokens = instruction ? tokenizer.encode(instruction) : [];
  const instructionIds = instructionTokens.length;
  // The instruction sets the text encoder's length (L_all = its ids + max_sequence_length - 2): bounded as well.
  checkBounded('encodePrompts: the instruction (tokens)', instructionIds, LIMITS.instructionTokens, 0);
  const lengthAll = instruction ? instructionIds + maxSequenceLength - 2 : maxSequenceLength;
  const prompt = tokenizer.encodeBatch(texts, { maxLength: lengthAll });
  const selectIndex = instruction
    ? [0, ...Array.from({ length: maxSequenceLength - 1 }, (_, i) => lengthAll - maxSequenceLength + 1 + i)]
    : Array.from({ length: maxSequenceLength }, (_, i) => i);
  const negative = tokenizer.encodeBatch(
    negatives.map((n) => preprocessPrompt(n, dialect)),
    { maxLength: maxSequenceLength },
  );

  const warnings: string[] = [];
  prompt.dropped.forEach((n, b) => {
    if (n > 0) {
      warnings.push(
        `prompt ${b}: ${n} token(s) beyond the ${maxSequenceLength - 1} that fit after the instruction were dropped (max_sequence_length ${maxSequenceLength})`,
      );
    }
  });
  negative.dropped.forEach((n, b) => {
    if (n > 0) warnings.push(`negative prompt ${b}: ${n} token(s) beyond max_sequence_length ${maxSequenceLength} were dropped`);
  });
  for (const w of warnings) options.onWarning?.(w);
  return { prompt, selectIndex, negative, instructionIds, instructionPrefix: instructionTokens.slice(0, -1), warnings };
}

/** Rows `index` of axis 1 of t [B, L, ...] -> [B, index.length, ...]. */
export function selectPositions<D extends 'float32' | 'int64'>(t: HostTensor<D>, index: readonly number[]): HostTensor<D> {
  const [b, l] = t.shape;
  const inner = t.shape.slice(2).reduce((p, d) => p * d, 1);
  const Ctor = t.data.constructor as { new (n: number): HostTensor<D>['data'] };
  const out = new Ctor(b * index.length * inner);
  for (let i = 0; i < b; i++) {
    index.forEach((src, j) => {
      if (src < 0 || src >= l) throw new Error(`selectPositions: position ${src} is outside [0, ${l})`);
      const from = (i * l + src) * inner;
      (out as Float32Array).set((t.data as Float32Array).subarray(from, from + inner), (i * index.length + j) * inner);
    });
  }
  return new HostTensor(t.dtype, [b, index.length, ...t.shape.slice(2)], out);
}

/** Encodes positive and negative prompts for the SANA transformer (see the header for the algorithm). */
export async function encodePrompts(
  prompts: string | readonly string[],
  options: EncodePromptsOptions,
  tokenizer: GemmaTokenizer,
  textEncoder: TextEncoderLike,
): Promise<EncodedPrompts> {
  const prepared = preparePrompts(prompts, options, tokenizer);
  const { prompt, negative, selectIndex } = prepared;
  const nvlabs = options.dialect === 'nvlabs';
  const trim = options.trimPadding ?? !nvlabs;
  if (prepared.instructionPrefix.length > 0) await textEncoder.cachePrefix?.(prepared.instructionPrefix);
  // Separate runs: stacked, the 1-token empty negative prompt would be padded to the instruction's length.
  const positiveStates = await encodeStates(textEncoder, prompt, trim);
  const negativeStates = await encodeStates(textEncoder, negative, trim);
  const promptEmbeds = selectPositions(positiveStates, selectIndex);
  const promptAttentionMask = selectPositions(prompt.attentionMask, selectIndex);
  return {
    promptEmbeds,
    promptAttentionMask,
    negativePromptEmbeds: negativeStates,
    negativePromptAttentionMask: nvlabs
      ? new HostTensor('int64', promptAttentionMask.shape, promptAttentionMask.data.slice())
      : negative.attentionMask,
    warnings: prepared.warnings,
  };
}

/** Last hidden states [B, T, hidden]; with `trim`, computed up to the batch's last real token, zeros after it. */
async function encodeStates(encoder: TextEncoderLike, batch: TokenizedBatch, trim: boolean): Promise<HostTensor<'float32'>> {
  const { inputIds, attentionMask } = batch;
  const [b, t] = inputIds.shape;
  let keep = t;
  if (trim) {
    keep = 1;
    for (let i = 0; i < b * t; i++) if (attentionMask.data[i] !== 0n) keep = Math.max(keep, (i % t) + 1);
  }
  if (keep === t) return asFloat32((await encoder.encode(inputIds, attentionMask)).lastHiddenState);
  const head = (x: HostTensor<'int64'>) => {
    const out = new BigInt64Array(b * keep);
    for (let r = 0; r < b; r++) out.set(x.data.subarray(r * t, r * t + keep), r * keep);
    return new HostTensor('int64', [b, keep], out); // [B, keep]
  };
  const states = asFloat32((await encoder.encode(head(inputIds), head(attentionMask))).lastHiddenState); // [B, keep, hidden]
  const hidden = states.shape[2];
  const full = new Float32Array(b * t * hidden);
  for (let r = 0; r < b; r++) full.set(states.data.subarray(r * keep * hidden, (r + 1) * keep * hidden), r * t * hidden);
  return HostTensor.float32([b, t, hidden], full); // [B, T, hidden], zeros after the last real token
}

function asFloat32(t: HostTensor): HostTensor<'float32'> {
  return t.dtype === 'float32' ? (t as HostTensor<'float32'>) : HostTensor.float32(t.shape, Float32Array.from(t.toFloat32()));
}
