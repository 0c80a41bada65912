// A load cache for byte-pair tokenizers: what @huggingface/tokenizers builds from a tokenizer.json, saved in a form
// that rebuilds in a fraction of the time. ref: SANA.md §4.1; issue "CPU speed and memory" (loading)
//
// Why: Gemma-2's tokenizer.json is 16 MB with 256000 tokens and 580604 merges. JSON.parse takes ~0.7 s and the
// library's BPE constructor ~1.6 s more (an object of 256000 keys turned into a Map, every merge split on its space
// and re-joined by JSON.stringify as the key of its rank), at every start of every process: most of the text
// encoder's load time. The cache keeps the finished pieces instead: after a JSON line with the rest of tokenizer.json
// (normalizer, pre-tokenizer, decoder, added tokens: small), the vocabulary entries in the constructor's order as one
// NUL-joined UTF-8 string (String.split reads it at memory speed), and the merge ranks exactly as the constructor
// left them (JSON-stringified pairs -> rank, duplicates resolved) as a sorted table: int32 offsets and values and
// one UTF-16 blob of keys, searched in place (sorted-string-table.ts), so nothing of it is built at load.
//
// The library builds the tokenizer; only its BPE model's lookup tables are filled from the cache instead of from
// config.vocab and config.merges: a Tokenizer is constructed from the small rest with an empty vocabulary, then the
// BPE model gets tokens_to_ids and vocab made exactly as its constructor makes them (same Map insertion order) and
// bpe_ranks as the table (a read-only Map whose get gives the same ranks; the library only calls get on it), and the
// added tokens are entered again as the Tokenizer constructor enters them. Those fields are the library's
// internals, so the cache is keyed by the library's version, and a BPE model without them, or a tokenizer whose
// tables the cache cannot represent (a NUL inside a token), loads the plain way. The cache file is keyed by the
// tokenizer.json bytes (sha256) and written atomically.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { defaultWeightCacheDirs, writableFolder } from '../io/cache-dirs.js';
import { MAX_JSON_BYTES, readJsonFile } from '../io/config.js';
import { writeBytesAtomic } from '../io/atomic-write.js';
import { SortedStringTable } from './sorted-string-table.js';

const FORMAT = 'sana-ts-bpe-tables-2';
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
  /** Byte ranges [start, end) in the file: ids and tokens (UTF-8, NUL-joined), the rank table's offsets and values
   * (int32, little-endian) and keys (UTF-16LE). */
  sections: { vocab: [number, number]; offsets: [number, number]; values: [number, number]; keys: [number, number] };
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
      const pkg = readJsonFile(file) as { name?: string; version?: string };
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

/** The cache file, or undefined when the tables cannot be represented (a NUL in a token). */
function cacheBytes(json: Record<string, unknown>, built: BpeTables, source: string): Buffer | undefined {
  const model = json.model as { vocab: Record<string, number> };
  const entries = Object.entries(model.vocab); // the constructor's order: new Map(Object.entries(config.vocab))
  const tokens = entries.map(([token]) => token);
  if (tokens.some((t) => t.includes(SEPARATOR))) return undefined;
  const vocab = Buffer.from([...entries.map(([, id]) => String(id)), ...tokens].join(SEPARATOR), 'utf8');
  // the ranks exactly as the constructor left them (duplicate merges: the last rank), sorted for lookup
  const table = SortedStringTable.encode(built.bpe_ranks);
  const keys = Buffer.from(table.blob, 'utf16le');
  const int32 = (a: Int32Array) => {
    const b = Buffer.alloc(a.length * 4);
    for (let i = 0; i < a.length; i++) b.writeInt32LE(a[i], i * 4);
    return b;
  };
  const offsets = int32(table.offsets);
  const values = int32(table.values);
  const header = (at: number): CacheHeader => {
    const vocabEnd = at + vocab.length;
    const offsetsStart = vocabEnd + ((4 - (vocabEnd % 4)) % 4);
    const valuesStart = offsetsStart + offsets.length;
    const keysStart = valuesStart + values.length;
    return {
      format: FORMAT,
      library: libraryVersion(),
      source,
      rest: restOf(json),
      vocabEntries: entries.length,
      ranks: table.values.length,
      sections: { vocab: [at, vocabEnd], offsets: [offsetsStart, valuesStart], values: [valuesStart, keysStart], keys: [keysStart, keysStart + keys.length] },
    };
  };
  // the header holds its own length through the offsets: widen until the digits settle
  let line = Buffer.from(`${JSON.stringify(header(0))}\n`, 'utf8');
  for (let i = 0; i < 4; i++) line = Buffer.from(`${JSON.stringify(header(line.length))}\n`, 'utf8');
  const h = header(line.length);
  if (Buffer.from(`${JSON.stringify(h)}\n`, 'utf8').length !== line.length) return undefined;
  const pad = Buffer.alloc(h.sections.offsets[0] - h.sections.vocab[1]);
  return Buffer.concat([line, vocab, pad, offsets, values, keys]);
}

/** A Tokenizer from a cache file; undefined when the file is not for this source and library. */
function fromCache(file: Buffer, source: string, config: Record<string, unknown>): Tokenizer | undefined {
  const newline = file.indexOf(0x0a);
  if (newline < 0) return undefined;
  const header = JSON.parse(file.toString('utf8', 0, newline)) as CacheHeader;
  if (header.format !== FORMAT || header.library !== libraryVersion() || header.source !== source) return undefined;
  const { vocab: v, offsets: o, values: w, keys: k } = header.sections;
  if (k[1] !== file.length || newline + 1 !== v[0]) return undefined;
  const n = header.vocabEntries;
  const items = n === 0 ? [] : file.toString('utf8', v[0], v[1]).split(SEPARATOR); // [ids (n), tokens (n)]
  if (items.length !== 2 * n) return undefined;
  const int32 = ([start, end]: [number, number]) => new Int32Array(file.buffer.slice(file.byteOffset + start, file.byteOffset + end));
  const ranks = new SortedStringTable(file.toString('utf16le', k[0], k[1]), int32(o), int32(w));
  if (ranks.size !== header.ranks) return undefined;

  const library = new Tokenizer(header.rest, config) as unknown as LibraryTokenizer;
  const model = bpeTables(library.model);
  if (!model) return undefined;
  // as the BPE constructor builds them
  const tokensToIds = new Map<string, number>();
  for (let i = 0; i < n; i++) tokensToIds.set(items[n + i], Number(items[i]));
  const vocab = new Array<string>(tokensToIds.size);
  for (const [token, id] of tokensToIds) vocab[id] = token;
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
      const tokenizer = fromCache(fs.readFileSync(file), source, config);
      if (tokenizer) return { tokenizer, cache: 'hit' };
    } catch {
      // an unreadable or foreign cache file: rebuilt below from tokenizer.json
    }
  }
  const json = parse();
  const tokenizer = new Tokenizer(json, config);
  const built = bpeTables((tokenizer as unknown as LibraryTokenizer).model);
  if (!built || os.endianness() !== 'LE') return { tokenizer, cache: 'plain' };
  const bytes = cacheBytes(json, built, source);
  const dir = dirs.find((d) => writableFolder(d));
  if (bytes === undefined || dir === undefined) return { tokenizer, cache: 'plain' };
  try {
    fs.mkdirSync(dir, { recursive: true });
    writeBytesAtomic(path.join(dir, name), bytes);
  } catch {
    return { tokenizer, cache: 'plain' }; // a full disk or a lost race: this load works, the next one retries
  }
  return { tokenizer, cache: 'written' };
}
