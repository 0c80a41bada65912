// The Gemma tokenizer of a SANA pipeline's tokenizer/ folder, read from its Hugging Face `tokenizer.json` (+
// `tokenizer_config.json`) with @huggingface/tokenizers, plus what transformers adds around it for SANA: BOS (and
// EOS if configured), truncation to max_length, right padding with <pad>, and the attention mask. ref: SANA.md §4.1
//
// Text that literally contains a special-token string such as "<bos>" is encoded as that special token, exactly as
// transformers does (slow and fast tokenizers alike).

import * as fs from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { containedPath } from '../io/contained-path.js';
import { HostTensor } from '../io/host-tensor.js';
import { readJsonFile } from '../io/config.js';
import { TokenizerError, checkTokenizerConfig, checkTokenizerJson } from './tokenizer-files.js';
import { TokenizerLoadOptions, loadBpeTokenizer } from './tokenizer-cache.js';

export { TokenizerError } from './tokenizer-files.js';

/** Tokenizer classes a SANA model_index.json / tokenizer_config.json may name for this tokenizer. */
export const GEMMA_TOKENIZER_CLASSES = ['GemmaTokenizer', 'GemmaTokenizerFast'] as const;

export interface BatchEncodeOptions {
  /** Pad (right) and truncate every text to this many ids, special tokens included. */
  maxLength: number;
  /** Default true: drop ids beyond maxLength (BOS kept). false: a longer text is an error. */
  truncation?: boolean;
}

export interface TokenizedBatch {
  /** int64 [B, maxLength]. */
  readonly inputIds: HostTensor<'int64'>;
  /** int64 [B, maxLength]: 1 for BOS and text tokens, 0 for padding. */
  readonly attentionMask: HostTensor<'int64'>;
  /** Ids per text before padding (after truncation). */
  readonly lengths: readonly number[];
  /** Ids that truncation dropped, per text (0 = none). */
  readonly dropped: readonly number[];
}

export class GemmaTokenizer {
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    config: Record<string, unknown>,
    /** Where it was loaded from, for error messages. */
    readonly source: string,
  ) {
    const tokenOf = (key: string, fallback: string): string => {
      const v = config[key] ?? fallback;
      const content = typeof v === 'object' && v !== null ? (v as { content?: unknown }).content : v;
      if (typeof content !== 'string') throw new TokenizerError(`${source}: tokenizer_config.json key "${key}" must be a token string`);
      return content;
    };
    const idOf = (key: string, fallback: string): number => {
      const token = tokenOf(key, fallback);
      const id = tokenizer.token_to_id(token);
      if (id === undefined) throw new TokenizerError(`${source}: ${key} "${token}" is not in the vocabulary of tokenizer.json`);
      return id;
    };
    this.padId = idOf('pad_token', '<pad>');
    this.bosId = idOf('bos_token', '<bos>');
    this.eosId = tokenizer.token_to_id(tokenOf('eos_token', '<eos>'));
    this.addBos = config.add_bos_token === undefined ? true : config.add_bos_token === true;
    this.addEos = config.add_eos_token === true;
    if (this.addEos && this.eosId === undefined) throw new TokenizerError(`${source}: add_eos_token is set but the eos token is not in the vocabulary`);
  }

  /**
   * Loads tokenizer.json and tokenizer_config.json from a folder (a pipeline's tokenizer/). Both must lie inside the
   * folder; their structure is checked before the library sees them, and the tokenizer must encode a probe text.
   * What the library builds from tokenizer.json is cached (tokenizer-cache.ts): ~0.3 s instead of ~2.3 s for Gemma-2's.
   */
  static fromFolder(dir: string, options: TokenizerLoadOptions = {}): GemmaTokenizer {
    const jsonPath = containedPath(dir, 'tokenizer.json', { file: dir }, { kind: 'file' });
    if (!fs.existsSync(jsonPath)) {
      const hasSp = fs.existsSync(containedPath(dir, 'tokenizer.model', { file: dir }));
      throw new TokenizerError(
        `${dir}: no tokenizer.json${hasSp ? ' (only the SentencePiece tokenizer.model, which this implementation does not read; convert it with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir))' : ''}`,
      );
    }
    const configPath = containedPath(dir, 'tokenizer_config.json', { file: dir }, { kind: 'file' });
    const config = fs.existsSync(configPath) ? readJsonFile(configPath) : {};
    const cls = config.tokenizer_class;
    if (cls !== undefined && !(GEMMA_TOKENIZER_CLASSES as readonly unknown[]).includes(cls)) {
      throw new TokenizerError(`${configPath}: tokenizer_class must be one of ${GEMMA_TOKENIZER_CLASSES.join(', ')} (got ${JSON.stringify(cls)})`);
    }
    checkTokenizerConfig(configPath, config);
    let unreadable = false; // errors of reading and checking the file are already worded for the user
    const parse = () => {
      try {
        const json = readJsonFile(jsonPath);
        checkTokenizerJson(jsonPath, json);
        return json;
      } catch (e) {
        unreadable = true;
        throw e;
      }
    };
    let library: Tokenizer;
    try {
      library = loadBpeTokenizer(jsonPath, config, parse, options).tokenizer;
    } catch (e) {
      if (unreadable) throw e;
      // what the structural check cannot see (a normalizer's own fields): the library's words, with the file named
      throw new TokenizerError(`${jsonPath}: the tokenizer cannot be built from it: ${(e as Error).message ?? String(e)}`);
    }
    const tokenizer = new GemmaTokenizer(library, config, dir);
    try {
      tokenizer.textIds('a B 1, \u00e9');
    } catch (e) {
      if (e instanceof TokenizerError) throw e;
      throw new TokenizerError(`${jsonPath}: the tokenizer fails on a probe text: ${(e as Error).message ?? String(e)}`);
    }
    return tokenizer;
  }

  /** Ids of one text: BOS (if configured) + text ids (+ EOS if configured); no padding or truncation. */
  encode(text: string): number[] {
    return this.withSpecials(this.textIds(text));
  }

  /** Ids of the text alone, without special tokens. */
  textIds(text: string): number[] {
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    // a token with no id (no unk_token in the vocabulary, no byte fallback) would become NaN or a crash downstream
    const bad = ids.findIndex((id: number) => !Number.isSafeInteger(id) || id < 0);
    if (bad >= 0) {
      const piece = this.tokenizer.encode(text, { add_special_tokens: false }).tokens[bad];
      throw new TokenizerError(`${this.source}: the tokenizer has no id for ${JSON.stringify(piece)} (no unk_token in its vocabulary and no byte fallback)`);
    }
    return ids;
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: false });
  }

  /**
   * transformers' tokenizer(texts, padding="max_length", max_length, truncation=True, add_special_tokens=True):
   * text ids cut to maxLength minus the special tokens, specials added, then <pad> on the right.
   */
  encodeBatch(texts: readonly string[], options: BatchEncodeOptions): TokenizedBatch {
    const { maxLength } = options;
    const specials = (this.addBos ? 1 : 0) + (this.addEos ? 1 : 0);
    if (!Number.isInteger(maxLength) || maxLength < specials) {
      throw new Error(`encodeBatch: maxLength must be an integer >= ${specials} (got ${maxLength})`);
    }
    const ids = new BigInt64Array(texts.length * maxLength).fill(BigInt(this.padId));
    const mask = new BigInt64Array(texts.length * maxLength);
    const lengths: number[] = [];
    const dropped: number[] = [];
    texts.forEach((text, b) => {
      if (typeof text !== 'string') throw new Error(`encodeBatch: text ${b} is not a string`);
      const body = this.textIds(text);
      const keep = maxLength - specials;
      if (body.length > keep && options.truncation === false) {
        throw new Error(`encodeBatch: text ${b} has ${body.length + specials} ids, more than maxLength ${maxLength}`);
      }
      dropped.push(Math.max(0, body.length - keep));
      const row = this.withSpecials(body.slice(0, keep));
      row.forEach((id, i) => {
        ids[b * maxLength + i] = BigInt(id);
        mask[b * maxLength + i] = 1n;
      });
      lengths.push(row.length);
    });
    return {
      inputIds: HostTensor.int64([texts.length, maxLength], ids),
      attentionMask: HostTensor.int64([texts.length, maxLength], mask),
      lengths,
      dropped,
    };
  }

  private withSpecials(body: number[]): number[] {
    const out = this.addBos ? [this.bosId, ...body] : [...body];
    if (this.addEos) out.push(this.eosId!);
    return out;
  }
}

/** Checks the tokenizer class a model_index.json names ([library, class]). */
export function checkTokenizerClass(entry: unknown, where: string): void {
  const cls = Array.isArray(entry) ? entry[1] : entry;
  if (!(GEMMA_TOKENIZER_CLASSES as readonly unknown[]).includes(cls)) {
    throw new Error(`${where}: tokenizer class must be one of ${GEMMA_TOKENIZER_CLASSES.join(', ')} (got ${JSON.stringify(cls)})`);
  }
}
