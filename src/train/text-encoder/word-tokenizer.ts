// A Gemma-style Hugging Face fast tokenizer (tokenizer.json + tokenizer_config.json + special_tokens_map.json) built
// from a word list, for the small bundled SANA model: each listed word is ONE token "▁word", so short captions such
// as "a red circle left of a blue square" encode to <bos> + one id per word, and the text-encoder's embedding table
// stays small. It has the layout of Gemma's own tokenizer.json (BPE with byte_fallback, " " -> "▁" normalizer, no
// pre-tokenizer, a <bos> post-processor, Gemma's decoder), so it loads through the same GemmaTokenizer code as the
// real Gemma-2 tokenizer. ref: SANA.md §4.1
//
// Ids: <pad> 0, <eos> 1, <bos> 2, <unk> 3, the 256 byte tokens <0x00>..<0xFF>, the single characters, then the
// pieces the merges make, in merge order. Any text encodes without <unk>: a character outside the vocabulary falls
// back to its UTF-8 bytes.
//
// Merges. Without a pre-tokenizer the whole text is one BPE word, so the merges must never join across a space. Every
// merge appends ONE character (never "▁") to a piece that starts a word, so a piece can only grow rightwards from a
// word's start and stops at the next "▁": "▁" + "r" -> "▁r", "▁r" + "e" -> "▁re", "▁re" + "d" -> "▁red". The
// prefixes are the intermediate pieces; each word's merges are independent of every other word's, so their ranks
// (shorter pieces first) do not matter. An unlisted word encodes as its longest prefix in the vocabulary plus single
// characters ("▁circlet" -> "▁circle" "t").
// Every character also gets the merge "▁" + c: the reference prompt window (SANA.md §4.3) assumes the instruction's
// trailing "▁" merges into the prompt's first token, so this holds for prompts starting with a digit or a sign too.
// Bare words (no "▁"; for words that follow a newline or a quote, or open the text) have no anchor: a bare merge can
// start at any character, so one bare word's merges can cut another apart ("ne" of "next" inside "one"). They are
// added one word at a time, in list order: the word is encoded with the merges so far and merges joining its pieces
// left to right are appended. A later merge ranks after all earlier ones and so never applies inside an earlier
// word before that word is whole, and all bare merges rank after every "▁" merge, so they never break a "▁" word.

import { complexHumanInstruction } from '../../text/complex-human-instruction.js';

export const SPACE_PIECE = '▁';

/** Gemma's special tokens, in id order. */
export const SPECIAL_TOKENS = ['<pad>', '<eos>', '<bos>', '<unk>'] as const;

export interface WordTokenizerOptions {
  /** Words that also get a piece without the leading "▁" (they follow a newline or a quote, or open the text). */
  bareWords?: readonly string[];
}

export interface WordTokenizerFiles {
  /** tokenizer.json (Hugging Face fast-tokenizer format). */
  readonly tokenizerJson: object;
  /** tokenizer_config.json (GemmaTokenizerFast). */
  readonly tokenizerConfigJson: object;
  /** special_tokens_map.json. */
  readonly specialTokensMapJson: object;
  /** Number of ids (the text encoder's vocab_size). */
  readonly vocabSize: number;
}

/** transformers' VERY_LARGE_INTEGER = int(1e30), the model_max_length it writes when a tokenizer has none. */
const VERY_LARGE_INTEGER_TEXT = '1000000000000000019884624838656';

function byteToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

function checkWord(word: unknown, what: string): string {
  if (typeof word !== 'string' || word.length === 0) throw new Error(`buildWordTokenizer: ${what} must be a non-empty string (got ${JSON.stringify(word)})`);
  if (/\s/u.test(word) || word.includes(SPACE_PIECE)) {
    throw new Error(`buildWordTokenizer: ${what} ${JSON.stringify(word)} must not contain whitespace or "${SPACE_PIECE}"`);
  }
  return word;
}

/** Code-point order (what sort() gives on UTF-16 is wrong outside the BMP). */
function byCodePoint(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** BPE of one word as Hugging Face applies it: merge the lowest-ranked adjacent pair (leftmost on ties) until none. */
function bpe(word: string, ranks: ReadonlyMap<string, number>): string[] {
  const pieces = [...word];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < pieces.length; i++) {
      const rank = ranks.get(`${pieces[i]} ${pieces[i + 1]}`);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = i;
      }
    }
    if (best < 0) return pieces;
    pieces.splice(best, 2, pieces[best] + pieces[best + 1]);
  }
}

/** Merges appended word by word so every bare word becomes one token (see the header). */
function bareMergesFor(words: readonly string[]): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  const ranks = new Map<string, number>();
  for (const word of words) {
    const pieces = bpe(word, ranks);
    for (let i = 1; i < pieces.length; i++) {
      const left = pieces.slice(0, i).join('');
      const key = `${left} ${pieces[i]}`;
      if (ranks.has(key)) continue;
      ranks.set(key, merges.length);
      merges.push([left, pieces[i]]);
    }
    if (bpe(word, ranks).length !== 1) throw new Error(`buildWordTokenizer: bare word ${JSON.stringify(word)} does not encode as one token`);
  }
  return merges;
}

/** Left-anchored merges building every piece of `pieces`: [prefix, next character], shorter results first. */
function chainMerges(pieces: Iterable<string>, have: Set<string>): Array<[string, string]> {
  const byResult = new Map<string, [string, string]>();
  for (const piece of pieces) {
    const chars = [...piece];
    for (let n = 2; n <= chars.length; n++) {
      const result = chars.slice(0, n).join('');
      if (!have.has(result) && !byResult.has(result)) byResult.set(result, [chars.slice(0, n - 1).join(''), chars[n - 1]]);
    }
  }
  const results = [...byResult.keys()].sort((a, b) => [...a].length - [...b].length || byCodePoint(a, b));
  return results.map((r) => byResult.get(r)!);
}

/** Builds the three tokenizer files of a vocabulary holding every word as one "▁word" token (see the header). */
export function buildWordTokenizer(words: readonly string[], options: WordTokenizerOptions = {}): WordTokenizerFiles {
  if (!Array.isArray(words)) throw new Error('buildWordTokenizer: words must be an array of strings');
  const spaced = [...new Set(words.map((w, i) => checkWord(w, `word ${i}`)))];
  const bare = [...new Set((options.bareWords ?? []).map((w, i) => checkWord(w, `bare word ${i}`)))];

  const vocab: string[] = [...SPECIAL_TOKENS, ...Array.from({ length: 256 }, (_, b) => byteToken(b))];
  // printable ASCII always: digits and signs of any prompt stay one id each instead of a byte token
  const chars = new Set<string>([SPACE_PIECE]);
  for (let c = 0x21; c <= 0x7e; c++) chars.add(String.fromCharCode(c));
  for (const w of [...spaced, ...bare]) for (const c of w) chars.add(c);
  vocab.push(...[...chars].sort(byCodePoint));

  const have = new Set(vocab);
  const spaceMerges = chainMerges(
    [...[...chars].filter((c) => c !== SPACE_PIECE).map((c) => SPACE_PIECE + c), ...spaced.map((w) => SPACE_PIECE + w)],
    have,
  );
  const merges = [...spaceMerges, ...bareMergesFor(bare)];
  for (const [a, b] of merges) {
    // two merges may make the same piece (a bare word segmented differently): one id
    if (!have.has(a + b)) vocab.push(a + b);
    have.add(a + b);
  }

  const vocabMap: Record<string, number> = {};
  vocab.forEach((token, id) => {
    vocabMap[token] = id;
  });
  const addedTokens = SPECIAL_TOKENS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: SPACE_PIECE },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<bos>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<bos>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<bos>': { id: '<bos>', ids: [2], tokens: ['<bos>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: SPACE_PIECE }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabMap,
      merges,
    },
  };

  const tokenEntry = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false });
  const tokenizerConfigJson = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(SPECIAL_TOKENS.map((content, id) => [String(id), { ...tokenEntry(content), special: true }])),
    bos_token: '<bos>',
    clean_up_tokenization_spaces: false,
    eos_token: '<eos>',
    extra_special_tokens: {},
    model_max_length: 1e30,
    pad_token: '<pad>',
    padding_side: 'right',
    sp_model_kwargs: {},
    spaces_between_special_tokens: false,
    tokenizer_class: 'GemmaTokenizerFast',
    unk_token: '<unk>',
    use_default_system_prompt: false,
  };
  const specialTokensMapJson = {
    bos_token: tokenEntry('<bos>'),
    eos_token: tokenEntry('<eos>'),
    pad_token: tokenEntry('<pad>'),
    unk_token: tokenEntry('<unk>'),
  };
  return { tokenizerJson, tokenizerConfigJson, specialTokensMapJson, vocabSize: vocab.length };
}

/**
 * JSON text of a tokenizer file as transformers writes it (2-space indent); model_max_length 1e30 is spelled as the
 * integer transformers writes (int(1e30), the same float64), not JavaScript's "1e+30".
 */
export function tokenizerFileText(json: object): string {
  return JSON.stringify(json, null, 2).replace(/("model_max_length": )1e\+30\b/, `$1${VERY_LARGE_INTEGER_TEXT}`) + '\n';
}

/**
 * Words and punctuation runs of a text, for a tokenizer vocabulary: `words` are those that follow a space (they
 * get "▁word"), `bareWords` those that do not (text start, after a newline or a quote). Hyphenated and apostrophe
 * words stay whole ("double-decker"); a punctuation run is its own piece ("->", ",", ":").
 */
export function vocabularyOfText(text: string): { words: string[]; bareWords: string[] } {
  const words = new Set<string>();
  const bareWords = new Set<string>();
  for (const m of text.matchAll(/[\p{L}\p{N}]+(?:['-][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]+/gu)) {
    const before = m.index === 0 ? '' : text[m.index! - 1];
    (before === ' ' ? words : bareWords).add(m[0]);
  }
  // single characters are in every vocabulary anyway
  const multi = (s: Set<string>) => [...s].filter((w) => [...w].length > 1);
  return { words: multi(words), bareWords: multi(bareWords) };
}

/** The caption vocabulary of the coloured-shapes training set (lower case: the prompt path lower-cases). */
export const SHAPES_CAPTION_WORDS: readonly string[] = [
  // counts and articles
  'a', 'an', 'the', 'one', 'two', 'three', 'four', 'five', 'single', 'pair', 'some', 'several', 'each', 'both',
  // sizes
  'small', 'little', 'tiny', 'large', 'big', 'huge', 'medium', 'sized', 'size',
  // colours
  'red', 'green', 'blue', 'yellow', 'orange', 'purple', 'white', 'black', 'gray', 'grey', 'pink', 'brown', 'cyan',
  'magenta', 'colored', 'coloured', 'color', 'colour', 'dark', 'light', 'bright',
  // shapes
  'circle', 'circles', 'square', 'squares', 'triangle', 'triangles', 'diamond', 'diamonds', 'rectangle',
  'rectangles', 'star', 'stars', 'shape', 'shapes', 'dot', 'dots', 'disc', 'disk', 'ring', 'box',
  // places and relations
  'left', 'right', 'top', 'bottom', 'center', 'centre', 'middle', 'corner', 'upper', 'lower', 'side', 'edge',
  'of', 'to', 'on', 'at', 'in', 'into', 'above', 'over', 'below', 'under', 'beneath', 'beside', 'next', 'near',
  'between', 'behind', 'front', 'across', 'inside', 'outside', 'around', 'far', 'close', 'from',
  // scene words
  'background', 'image', 'picture', 'canvas', 'scene', 'and', 'with', 'is', 'are', 'there', 'plain', 'solid',
  'filled', 'empty', 'blank', 'alone', 'only', 'nothing', 'other', 'another', 'its', 'their', 'placed', 'drawn',
  'sits', 'sitting', 'lies', 'flat', 'simple',
];

function shapesVocabulary(): { words: string[]; bareWords: string[] } {
  const instruction = vocabularyOfText(complexHumanInstruction('diffusers'));
  // lower-cased forms too: a user prompt that repeats an instruction word ("User", "Enhanced") reaches it lower-cased
  const lowered = [...instruction.words, ...instruction.bareWords].map((w) => w.toLowerCase());
  return {
    words: [...new Set([...SHAPES_CAPTION_WORDS, ...instruction.words, ...lowered])],
    // caption words bare too: a prompt encoded without the instruction (the negative prompt) starts with no space
    bareWords: [...new Set([...instruction.bareWords, ...SHAPES_CAPTION_WORDS])],
  };
}

const SHAPES_VOCABULARY = shapesVocabulary();

/** Every word that gets a "▁word" token in the shapes model's tokenizer: captions + the instruction's words. */
export const SHAPES_TOKENIZER_WORDS: readonly string[] = SHAPES_VOCABULARY.words;

/** Words that also get a bare piece: the caption words and the instruction's words that follow a newline or a quote. */
export const SHAPES_TOKENIZER_BARE_WORDS: readonly string[] = SHAPES_VOCABULARY.bareWords;

/** The shapes model's tokenizer files. */
export function buildShapesTokenizer(): WordTokenizerFiles {
  return buildWordTokenizer(SHAPES_TOKENIZER_WORDS, { bareWords: SHAPES_TOKENIZER_BARE_WORDS });
}
