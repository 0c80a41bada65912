// What a Gemma tokenizer folder's tokenizer.json and tokenizer_config.json must hold before they are handed to
// @huggingface/tokenizers. The library trusts its input: a missing `added_tokens`, merges of mixed formats or a
// vocabulary id that is not an integer make it throw a TypeError deep inside, or build a tokenizer that later
// returns ids that are not ids. Checking the structure here turns each of those into an error naming the file and key.

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** The sections the library builds from tokenizer.json, each null or an object with a "type". */
const SECTIONS = ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const;

const OPTIONAL_FLAGS = ['byte_fallback', 'ignore_merges', 'fuse_unk'] as const;
const OPTIONAL_STRINGS = ['unk_token', 'end_of_word_suffix', 'continuing_subword_prefix', 'continuing_subword_suffix'] as const;
const ADDED_TOKEN_FLAGS = ['special', 'normalized', 'lstrip', 'rstrip', 'single_word'] as const;

/** Checks a tokenizer.json of a Gemma (BPE) tokenizer; throws a TokenizerError naming the key. */
export function checkTokenizerJson(file: string, json: Record<string, unknown>): void {
  const fail = (key: string, message: string): never => {
    throw new TokenizerError(`${file}: key "${key}" ${message}`);
  };
  const model = json.model;
  if (model === undefined) throw new TokenizerError(`${file}: no "model" (a tokenizer.json holds its vocabulary and merges there)`);
  if (!isObject(model)) fail('model', `must be an object, got ${typeName(model)}`);
  const m = model as Record<string, unknown>;
  if (m.type !== 'BPE') fail('model.type', `must be "BPE" (Gemma tokenizers are byte-pair encoders), got ${typeName(m.type)}`);
  if (!isObject(m.vocab)) fail('model.vocab', `must be an object of token -> id, got ${typeName(m.vocab)}`);
  // plain loops: a real vocabulary has 256000 tokens and 580000 merges, checked at every load
  const vocab = m.vocab as Record<string, unknown>;
  for (const token in vocab) {
    const id = vocab[token];
    if (!isId(id)) fail('model.vocab', `gives token ${JSON.stringify(token)} the id ${typeName(id)}; ids are non-negative integers`);
  }
  const merges = m.merges;
  if (!Array.isArray(merges)) fail('model.merges', `must be a list, got ${typeName(merges)}`);
  const list = merges as unknown[];
  // the library picks the format from the first entry and applies it to all
  const pairs = Array.isArray(list[0]);
  for (let i = 0; i < list.length; i++) {
    const entry = list[i];
    const ok = pairs
      ? Array.isArray(entry) && entry.length === 2 && typeof entry[0] === 'string' && typeof entry[1] === 'string'
      : typeof entry === 'string';
    if (!ok) fail('model.merges', `entry ${i} must be ${pairs ? 'a pair of strings, like the first entry' : 'a string "a b", like the first entry'}, got ${typeName(entry)}`);
  }
  for (const key of OPTIONAL_FLAGS) {
    if (m[key] !== undefined && m[key] !== null && typeof m[key] !== 'boolean') fail(`model.${key}`, `must be true or false, got ${typeName(m[key])}`);
  }
  for (const key of OPTIONAL_STRINGS) {
    if (m[key] !== undefined && m[key] !== null && typeof m[key] !== 'string') fail(`model.${key}`, `must be a string or null, got ${typeName(m[key])}`);
  }
  const added = json.added_tokens;
  if (!Array.isArray(added)) fail('added_tokens', `must be a list, got ${added === undefined ? 'nothing' : typeName(added)}`);
  (added as unknown[]).forEach((t, i) => {
    const key = `added_tokens[${i}]`;
    if (!isObject(t)) fail(key, `must be an object, got ${typeName(t)}`);
    const token = t as Record<string, unknown>;
    if (!isId(token.id)) fail(`${key}.id`, `must be a non-negative integer, got ${typeName(token.id)}`);
    if (typeof token.content !== 'string' || token.content === '') fail(`${key}.content`, `must be a non-empty string, got ${typeName(token.content)}`);
    for (const flag of ADDED_TOKEN_FLAGS) {
      if (token[flag] !== undefined && typeof token[flag] !== 'boolean') fail(`${key}.${flag}`, `must be true or false, got ${typeName(token[flag])}`);
    }
  });
  for (const section of SECTIONS) {
    const v = json[section];
    if (v === undefined) fail(section, 'is missing (null when there is none)');
    if (v !== null && !(isObject(v) && typeof v.type === 'string')) fail(section, `must be null or an object with a "type", got ${typeName(v)}`);
  }
}

/** Checks the keys of tokenizer_config.json that the library and GemmaTokenizer read. */
export function checkTokenizerConfig(file: string, config: Record<string, unknown>): void {
  const fail = (key: string, message: string): never => {
    throw new TokenizerError(`${file}: key "${key}" ${message}`);
  };
  for (const key of ['add_bos_token', 'add_eos_token', 'clean_up_tokenization_spaces', 'remove_space', 'do_lowercase_and_remove_accent']) {
    const v = config[key];
    if (v !== undefined && v !== null && typeof v !== 'boolean') fail(key, `must be true or false, got ${typeName(v)}`);
  }
  const extra = config.additional_special_tokens;
  // transformers writes them as strings, or as AddedToken objects with their "content"
  const isToken = (t: unknown) => typeof t === 'string' || (isObject(t) && typeof t.content === 'string');
  if (extra !== undefined && extra !== null && !(Array.isArray(extra) && extra.every(isToken))) {
    fail('additional_special_tokens', `must be a list of token strings, got ${typeName(extra)}`);
  }
}
