// A load cache for byte-pair tokenizers: what @huggingface/tokenizers builds from a tokenizer.json, saved in a form
// that rebuilds in a fraction of the time. ref: SANA.md §4.1; issue "CPU speed and memory" (loading)
//
// Why: Gemma-2's tokenizer.json is 16 MB with 256000 tokens and 580604 merges. JSON.parse takes ~0.7 s and the
// library's BPE constructor ~1.6 s more (an object of 256000 keys turned into a Map, every merge split on its space
// and re-joined by JSON.stringify as the key of its rank), at every start of every process: most of the text
// encoder's load time. The cache keeps the finished pieces instead: the vocabulary entries in the constructor's
// order and the rank keys already stringified, all one string joined by NUL, which String.split reads at memory
// speed, after a JSON line with the rest of tokenizer.json (normalizer, pre-tokenizer, decoder, added tokens: small).
//
// The library builds the tokenizer; only its BPE model's lookup tables are filled from the cache instead of from
// config.vocab and config.merges: a Tokenizer is constructed from the small rest with an empty vocabulary, then the
// BPE model gets tokens_to_ids, vocab and bpe_ranks made exactly as its constructor makes them (same Map insertion
// order, same key strings, same duplicate-merge rule), and the added tokens are entered again as the Tokenizer
// constructor enters them. Those fields are the library's internals, so the cache is keyed by the library's
// version, and a BPE model without them, or a tokenizer whose tables the cache cannot represent (a NUL inside a
// token), loads the plain way. The cache file is keyed by the tokenizer.json bytes (sha256) and written atomically.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { defaultWeightCacheDirs, writableFolder } from '../io/cache-dirs.js';
import { MAX_JSON_BYTES } from '../io/config.js';
import { writeBytesAtomic } from '../io/atomic-write.js';

const FORMAT = 'sana-ts-bpe-tables-1';
const SEPARATOR = '\u0000';

/** The BPE model fields the cache fills (those of @huggingface/tokenizers' BPE class). */
interface BpeTables {
  tokens_to_ids: Map<string, number>;
  vocab: string[];
  bpe_ranks: Map<string, number>;
  unk_token?: string;
  unk_token_id?: number;
}

interface LibraryTokenizer {
  model: unknown;
  added_tokens: readonly { content: string; id: number }[];
}

interface CacheHeader {
  format: string;
  library: string;
  source: string;
  /** tokenizer.json with model.vocab = {} and model.merges = []. */
  rest: Record<string, unknown>;
  vocabEntries: number;
  ranks: number;
}

export interface TokenizerLoadOptions {
  /** Folders to keep the cache in, first writable one wins; default beside tokenizer.json, then the user's cache;
   * [] turns the cache off. */
  readonly cacheDirs?: readonly string[];
}

export interface TokenizerLoad {
  readonly tokenizer: Tokenizer;
  /** 'hit': built from the cache; 'written': built from tokenizer.json and cached; 'plain': no cache used. */
  readonly cache: 'hit' | 'written' | 'plain';
}

let libraryVersionMemo: string | undefined;

/** The installed @huggingface/tokenizers version (its package.json, beside the resolved entry point). */
function libraryVersion(): string {
  if (libraryVersionMemo !== undefined) return libraryVersionMemo;
  let version = 'unknown';
  try {
    let dir = path.dirname(fileURLToPath(import.meta.resolve('@huggingface/tokenizers')));
    for (let i = 0; i < 4 && version === 'unknown'; i++, dir = path.dirname(dir)) {
      const file = path.join(dir, 'package.json');
      if (!fs.existsSync(file)) continue;
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@huggingface/tokenizers' && typeof pkg.version === 'string') version = pkg.version;
    }
  } catch {
    // no version: the cache is still keyed by the word 'unknown', and the field check below still applies
  }
  libraryVersionMemo = version;
  return version;
}

function bpeTables(model: unknown): BpeTables | undefined {
  const m = model as Partial<BpeTables> | null;
  // the library's models are callable objects (functions)
  const ok = m !== null && (typeof m === 'object' || typeof m === 'function') && m.tokens_to_ids instanceof Map && Array.isArray(m.vocab) && m.bpe_ranks instanceof Map;
  return ok ? (m as BpeTables) : undefined;
}

/** tokenizer.json without its vocabulary and merges. */
function restOf(json: Record<string, unknown>): Record<string, unknown> {
  const model = json.model as Record<string, unknown>;
  return { ...json, model: { ...model, vocab: {}, merges: [] } };
}

/** The cache file's text, or undefined when the tables cannot be represented (a NUL in a token). */
function cacheText(json: Record<string, unknown>, source: string): string | undefined {
  const model = json.model as { vocab: Record<string, number>; merges: (string | [string, string])[] };
  const entries = Object.entries(model.vocab); // the constructor's order: new Map(Object.entries(config.vocab))
  // the constructor's rank keys: JSON.stringify of each merge as a pair (the "a b" form split on its first space)
  const pairs = Array.isArray(model.merges[0]);
  const keys = model.merges.map((x) => JSON.stringify(pairs ? x : (x as string).split(' ', 2)));
  const tokens = entries.map(([token]) => token);
  if (tokens.some((t) => t.includes(SEPARATOR)) || keys.some((k) => k.includes(SEPARATOR))) return undefined;
  const header: CacheHeader = { format: FORMAT, library: libraryVersion(), source, rest: restOf(json), vocabEntries: entries.length, ranks: keys.length };
  // one header line (JSON has no raw newline), then ids, tokens and keys as one NUL-joined list
  return `${JSON.stringify(header)}\n${[...entries.map(([, id]) => String(id)), ...tokens, ...keys].join(SEPARATOR)}`;
}

/** A Tokenizer from a cache file's text; undefined when the file is not for this source and library. */
function fromCacheText(text: string, source: string, config: Record<string, unknown>): Tokenizer | undefined {
  const newline = text.indexOf('\n');
  if (newline < 0) return undefined;
  const header = JSON.parse(text.slice(0, newline)) as CacheHeader;
  if (header.format !== FORMAT || header.library !== libraryVersion() || header.source !== source) return undefined;
  const n = header.vocabEntries;
  const body = text.slice(newline + 1);
  const items = 2 * n + header.ranks === 0 ? [] : body.split(SEPARATOR); // [ids (n), tokens (n), keys (ranks)]
  if (items.length !== 2 * n + header.ranks) return undefined;

  const library = new Tokenizer(header.rest, config) as unknown as LibraryTokenizer;
  const model = bpeTables(library.model);
  if (!model) return undefined;
  // as the BPE constructor builds them
  const tokensToIds = new Map<string, number>();
  for (let i = 0; i < n; i++) tokensToIds.set(items[n + i], Number(items[i]));
  const vocab = new Array<string>(tokensToIds.size);
  for (const [token, id] of tokensToIds) vocab[id] = token;
  const ranks = new Map<string, number>();
  for (let i = 0; i < header.ranks; i++) ranks.set(items[2 * n + i], i);
  model.tokens_to_ids = tokensToIds;
  model.vocab = vocab;
  model.bpe_ranks = ranks;
  model.unk_token_id = model.unk_token === undefined ? undefined : tokensToIds.get(model.unk_token);
  // as the Tokenizer constructor enters them (it did so into the empty tables)
  for (const t of library.added_tokens) {
    model.tokens_to_ids.set(t.content, t.id);
    model.vocab[t.id] = t.content;
  }
  return library as unknown as Tokenizer;
}

function cacheFileName(source: string): string {
  return `tokenizer-${source.slice(0, 24)}.bpe`;
}

/**
 * The library Tokenizer of `jsonPath` with `config` (tokenizer_config.json), through the cache. `parse` reads and
 * checks tokenizer.json (called only when the cache misses); errors of the library's constructor propagate.
 */
export function loadBpeTokenizer(
  jsonPath: string,
  config: Record<string, unknown>,
  parse: () => Record<string, unknown>,
  options: TokenizerLoadOptions = {},
): TokenizerLoad {
  // in the browser build (no Node: its file system is memory for one page load) there is nothing to keep
  const node = typeof process.versions?.node === 'string';
  const dirs = options.cacheDirs ?? (node ? defaultWeightCacheDirs(path.dirname(jsonPath)) : []);
  // no cache, or a file too large to be a tokenizer (parse names that error)
  if (dirs.length === 0 || fs.statSync(jsonPath).size > MAX_JSON_BYTES) return { tokenizer: new Tokenizer(parse(), config), cache: 'plain' };
  const source = createHash('sha256').update(fs.readFileSync(jsonPath)).digest('hex');
  const name = cacheFileName(source);
  for (const dir of dirs) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    try {
      const tokenizer = fromCacheText(fs.readFileSync(file, 'utf8'), source, config);
      if (tokenizer) return { tokenizer, cache: 'hit' };
    } catch {
      // an unreadable or foreign cache file: rebuilt below from tokenizer.json
    }
  }
  const json = parse();
  const tokenizer = new Tokenizer(json, config);
  if (!bpeTables((tokenizer as unknown as LibraryTokenizer).model)) return { tokenizer, cache: 'plain' };
  const text = cacheText(json, source);
  const dir = dirs.find((d) => writableFolder(d));
  if (text === undefined || dir === undefined) return { tokenizer, cache: 'plain' };
  try {
    fs.mkdirSync(dir, { recursive: true });
    writeBytesAtomic(path.join(dir, name), Buffer.from(text, 'utf8'));
  } catch {
    return { tokenizer, cache: 'plain' }; // a full disk or a lost race: this load works, the next one retries
  }
  return { tokenizer, cache: 'written' };
}
