// Config reading: Python's non-standard JSON tokens, and typed getters whose errors name the file and the key.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigReader, readJsonFile } from '../src/io/config.js';
import { parseLenientJson } from '../src/io/lenient-json.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-cfg-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('lenient JSON', () => {
  test('-Infinity, Infinity and NaN outside strings; untouched inside strings', () => {
    const v = parseLenientJson('{"lo": -Infinity, "hi": Infinity, "n": NaN, "s": "-Infinity NaN", "l": [1, -Infinity]}', 'x.json') as Record<string, unknown>;
    assert.equal(v.lo, -Infinity);
    assert.equal(v.hi, Infinity);
    assert.ok(Number.isNaN(v.n));
    assert.equal(v.s, '-Infinity NaN');
    assert.deepEqual(v.l, [1, -Infinity]);
  });

  test('strings with escaped quotes survive the lenient path', () => {
    const v = parseLenientJson('{"a": "say \\"Infinity\\"", "b": -Infinity}', 'x.json') as Record<string, unknown>;
    assert.equal(v.a, 'say "Infinity"');
    assert.equal(v.b, -Infinity);
  });

  test('really broken JSON names the file', () => {
    assert.throws(() => parseLenientJson('{"a": }', 'cfg.json'), /cfg\.json: invalid JSON/);
    const file = path.join(dir, 'list.json');
    fs.writeFileSync(file, '[1, 2]');
    assert.throws(() => readJsonFile(file), (e: Error) => e.message === `${file}: expected a JSON object`);
    assert.throws(() => readJsonFile(path.join(dir, 'none.json')), /none\.json: cannot read: ENOENT/);
  });
});

describe('ConfigReader', () => {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({ layers: 28, eps: 1e-6, name: 'sana', flag: true, kind: 'flow', dims: [1, 2], heads: 'x', stages: [1, 2, 3], none: null }),
  );
  const cfg = ConfigReader.open(file);

  test('typed getters and fallbacks', () => {
    assert.equal(cfg.positiveInt('layers'), 28);
    assert.equal(cfg.number('eps'), 1e-6);
    assert.equal(cfg.string('name'), 'sana');
    assert.equal(cfg.bool('flag'), true);
    assert.equal(cfg.oneOf('kind', ['flow', 'eps'] as const), 'flow');
    assert.deepEqual(cfg.intArray('dims'), [1, 2]);
    assert.equal(cfg.int('absent', 5), 5);
    assert.equal(cfg.int('none', 6), 6, 'null counts as absent');
    assert.equal(cfg.optionalNumber('absent'), undefined);
    assert.deepEqual(cfg.perStage('layers', 3, (v): v is number => typeof v === 'number'), [28, 28, 28]);
    assert.deepEqual(cfg.perStage('stages', 3, (v): v is number => typeof v === 'number'), [1, 2, 3]);
  });

  test('errors name the file, the key, what was expected and what was found', () => {
    const named = (key: string, expected: string, got: string) => (e: Error) =>
      e.message === `${file}: config key "${key}" must be ${expected} (got ${got})`;
    assert.throws(() => cfg.int('missing_key'), named('missing_key', 'an integer', 'missing'));
    assert.throws(() => cfg.positiveInt('eps'), named('eps', 'an integer >= 1', '0.000001'));
    assert.throws(() => cfg.number('name'), named('name', 'a number', '"sana"'));
    assert.throws(() => cfg.string('layers'), named('layers', 'a string', '28'));
    assert.throws(() => cfg.bool('name'), named('name', 'true or false', '"sana"'));
    assert.throws(() => cfg.oneOf('kind', ['a', 'b']), named('kind', 'one of "a", "b"', '"flow"'));
    assert.throws(() => cfg.intArray('heads'), named('heads', 'a list of integers', '"x"'));
    assert.throws(() => cfg.stringArray('dims'), named('dims', 'a list of strings', '[1,2]'));
    assert.throws(() => cfg.perStage('stages', 4, (v): v is number => typeof v === 'number'), named('stages', 'a list of 4 values', '[1,2,3]'));
  });
});
