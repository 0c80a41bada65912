// Class 2 of issue 17: every file a model folder names stays inside it. Each loading path (shard index, weights
// lookup, component configs, tokenizer files, scheduler config, model_index.json component folders, the Hugging
// Face cache's refs/main) refuses `..`, absolute paths and links that lead out, naming the file and key, and never
// echoes a byte of the outside file; the Hugging Face cache's own blob links keep working.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { ContainmentError, containedPath } from '../src/io/contained-path.js';
import { readJsonFile } from '../src/io/config.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore, findWeights } from '../src/io/weights.js';
import { readSanaTransformerConfig } from '../src/models/sana/config.js';
import { pipelineComponents } from '../src/pipeline/components.js';
import { resolvePipelineFolder } from '../src/pipeline/model-folder.js';
import { readSchedulerConfig } from '../src/schedulers/scheduler-config.js';
import { GemmaTokenizer } from '../src/text/tokenizer.js';
import { fixturePath } from './helpers/fixtures.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-paths-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const MODEL = fixturePath('sana_pipeline_tiny_e2e', 'model');

/** An outside file whose bytes must never appear in a message: not JSON, so a parser's error would quote it. */
const SECRET = 'SECRET-7f3a9 root:x:0:0';
const outside = path.join(root, 'outside');
fs.mkdirSync(outside);
fs.writeFileSync(path.join(outside, 'secret.json'), SECRET);
fs.writeFileSync(path.join(outside, 'secret.safetensors'), SECRET);

let counter = 0;
function freshDir(): string {
  const d = path.join(root, `case${++counter}`);
  fs.mkdirSync(d);
  return d;
}

function copyModel(): string {
  const d = path.join(freshDir(), 'model');
  fs.cpSync(MODEL, d, { recursive: true });
  return d;
}

/** The call is refused with our error, naming `file` (and `key` when given), with no byte of the outside file. */
function refused(call: () => unknown, file: string, ...parts: string[]): void {
  assert.throws(call, (e: Error) => {
    assert.ok(e instanceof ContainmentError, `a ContainmentError, got ${e.name}: ${e.message}`);
    assert.ok(e.message.startsWith(file), `names ${file}: ${e.message}`);
    for (const p of parts) assert.ok(e.message.includes(p), `mentions ${p}: ${e.message}`);
    assert.ok(!e.message.includes('SECRET-7f3a9'), `echoes the outside file: ${e.message}`);
    return true;
  });
}

describe('names in a shard index', () => {
  function index(dir: string, weightMap: Record<string, unknown>): string {
    writeSafetensors(path.join(dir, 'model-1.safetensors'), { a: HostTensor.float32([1], [1]) });
    const p = path.join(dir, 'model.safetensors.index.json');
    fs.writeFileSync(p, JSON.stringify({ weight_map: weightMap }));
    return p;
  }

  test('".." and absolute paths are refused with the key named', () => {
    const dir = freshDir();
    const up = index(dir, { a: 'model-1.safetensors', b: '../outside/secret.safetensors' });
    refused(() => WeightStore.open(up), up, '"weight_map" entry "b"', 'points outside the folder');
    const abs = index(dir, { a: path.join(outside, 'secret.safetensors') });
    refused(() => WeightStore.open(abs), abs, '"weight_map" entry "a"', 'absolute paths');
  });

  test('a shard that is a link out of the folder is refused; a link inside it is followed', () => {
    const dir = freshDir();
    const p = index(dir, { a: 'model-1.safetensors', b: 'model-2.safetensors' });
    fs.symlinkSync(path.join(outside, 'secret.safetensors'), path.join(dir, 'model-2.safetensors'));
    refused(() => WeightStore.open(p), p, '"weight_map" entry "b"', 'a link that leads outside');
    fs.rmSync(path.join(dir, 'model-2.safetensors'));
    fs.symlinkSync('model-1.safetensors', path.join(dir, 'model-2.safetensors'));
    const inside = index(dir, { a: 'model-2.safetensors' });
    assert.deepEqual(Array.from(WeightStore.open(inside).read('a').data as Float32Array), [1]);
  });

  test('values that are not strings are named (our error, not a TypeError)', () => {
    const dir = freshDir();
    const p = index(dir, { a: 7 });
    assert.throws(() => WeightStore.open(p), (e: Error) => e.name === 'WeightsError' && e.message === `${p}: "weight_map" entry "a" must name a shard file (a string), got number`);
  });
});

describe('files a component folder is looked up by', () => {
  test('weights that are a link out of the folder', () => {
    const dir = freshDir();
    fs.symlinkSync(path.join(outside, 'secret.safetensors'), path.join(dir, 'diffusion_pytorch_model.safetensors'));
    refused(() => findWeights(dir, ['diffusion_pytorch_model']), path.join(dir, 'diffusion_pytorch_model.safetensors'), 'a link that leads outside');
  });

  test('a config.json that is a link out of the folder (its text would be quoted by the JSON parser)', () => {
    const dir = freshDir();
    fs.symlinkSync(path.join(outside, 'secret.json'), path.join(dir, 'config.json'));
    refused(() => readSanaTransformerConfig(dir), path.join(dir, 'config.json'), 'a link that leads outside');
  });

  test('tokenizer files that are links out of the folder', () => {
    const dir = freshDir();
    fs.cpSync(path.join(MODEL, 'tokenizer'), dir, { recursive: true });
    fs.rmSync(path.join(dir, 'tokenizer.json'));
    fs.symlinkSync(path.join(outside, 'secret.json'), path.join(dir, 'tokenizer.json'));
    refused(() => GemmaTokenizer.fromFolder(dir), path.join(dir, 'tokenizer.json'), 'a link that leads outside');
    fs.rmSync(path.join(dir, 'tokenizer.json'));
    fs.copyFileSync(path.join(MODEL, 'tokenizer', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    fs.rmSync(path.join(dir, 'tokenizer_config.json'));
    fs.symlinkSync(path.join(outside, 'secret.json'), path.join(dir, 'tokenizer_config.json'));
    refused(() => GemmaTokenizer.fromFolder(dir), path.join(dir, 'tokenizer_config.json'), 'a link that leads outside');
  });

  test('a scheduler config that is a link out of the folder', () => {
    const dir = freshDir();
    fs.symlinkSync(path.join(outside, 'secret.json'), path.join(dir, 'scheduler_config.json'));
    refused(() => readSchedulerConfig(dir), path.join(dir, 'scheduler_config.json'), 'a link that leads outside');
  });

  test('a folder where a file should be, and a broken link, are named', () => {
    const dir = freshDir();
    fs.mkdirSync(path.join(dir, 'config.json'));
    refused(() => readJsonFile(path.join(dir, 'config.json')), path.join(dir, 'config.json'), 'a folder where a file is expected');
    fs.symlinkSync(path.join(outside, 'nothing-here'), path.join(dir, 'diffusion_pytorch_model.safetensors'));
    refused(() => findWeights(dir, ['diffusion_pytorch_model']), path.join(dir, 'diffusion_pytorch_model.safetensors'), 'a broken link');
  });
});

describe('component folders in model_index.json', () => {
  test('a component folder that is a link out of the pipeline folder is refused with the key named', () => {
    const model = copyModel();
    const elsewhere = path.join(freshDir(), 'transformer');
    fs.renameSync(path.join(model, 'transformer'), elsewhere);
    fs.symlinkSync(elsewhere, path.join(model, 'transformer'));
    refused(() => resolvePipelineFolder(model), path.join(model, 'model_index.json'), '"transformer" names "transformer"', 'a link that leads outside');
  });

  test('a component folder linked inside the pipeline folder is fine', () => {
    const model = copyModel();
    fs.renameSync(path.join(model, 'transformer'), path.join(model, 'transformer-v2'));
    fs.symlinkSync('transformer-v2', path.join(model, 'transformer'));
    assert.equal(resolvePipelineFolder(model).components.transformer, path.join(model, 'transformer'));
  });
});

describe('the Hugging Face cache', () => {
  /** A cache repo whose snapshot files are relative links into blobs/, as huggingface_hub lays it out. */
  function hubRepo(cache: string, repoName: string, rev: string): string {
    const repo = path.join(cache, repoName);
    const snap = path.join(repo, 'snapshots', rev);
    fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
    fs.mkdirSync(path.join(repo, 'refs'));
    fs.writeFileSync(path.join(repo, 'refs', 'main'), rev);
    let blob = 0;
    const walk = (from: string, to: string, depth: number) => {
      fs.mkdirSync(to, { recursive: true });
      for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
        if (entry.isDirectory()) {
          walk(path.join(from, entry.name), path.join(to, entry.name), depth + 1);
          continue;
        }
        const hash = `blob${++blob}`;
        fs.copyFileSync(path.join(from, entry.name), path.join(repo, 'blobs', hash));
        fs.symlinkSync(`${'../'.repeat(depth + 2)}blobs/${hash}`, path.join(to, entry.name));
      }
    };
    walk(MODEL, snap, 0);
    return repo;
  }

  test('blob links of the same repo load: layout, configs, tokenizer, weights', () => {
    const cache = freshDir();
    hubRepo(cache, 'models--Org--Tiny', 'abc123');
    const folder = resolvePipelineFolder('Org/Tiny', { HF_HUB_CACHE: cache });
    assert.ok(fs.lstatSync(path.join(folder.components.transformer, 'config.json')).isSymbolicLink());
    const old = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache;
    try {
      assert.equal(pipelineComponents('Org/Tiny').transformer.latentChannels > 0, true);
    } finally {
      if (old === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = old;
    }
    assert.ok(GemmaTokenizer.fromFolder(folder.components.tokenizer!).encode('a cat').length > 1);
    assert.ok(WeightStore.open(findWeights(folder.components.vae, ['diffusion_pytorch_model'])).size > 0);
  });

  test("a link into another repo's blobs is refused", () => {
    const cache = freshDir();
    hubRepo(cache, 'models--Org--Tiny', 'abc123');
    const other = hubRepo(cache, 'models--Evil--Other', 'def456');
    fs.writeFileSync(path.join(other, 'blobs', 'secret'), SECRET);
    const link = path.join(cache, 'models--Org--Tiny', 'snapshots', 'abc123', 'transformer', 'config.json');
    fs.rmSync(link);
    fs.symlinkSync('../../../../models--Evil--Other/blobs/secret', link);
    refused(() => resolvePipelineFolder('Org/Tiny', { HF_HUB_CACHE: cache }), link, 'a link that leads outside');
  });

  test('a refs/main revision that climbs out of snapshots/ is refused', () => {
    const cache = freshDir();
    const repo = hubRepo(cache, 'models--Org--Tiny', 'abc123');
    fs.writeFileSync(path.join(repo, 'refs', 'main'), '../../../outside');
    refused(() => resolvePipelineFolder('Org/Tiny', { HF_HUB_CACHE: cache }), path.join(repo, 'refs', 'main'), 'the revision names "../../../outside"');
  });
});

test('containedPath: NUL bytes and empty names are refused; a missing file is returned for the caller to report', () => {
  const dir = freshDir();
  const by = { file: path.join(dir, 'index.json'), key: '"k"' };
  assert.throws(() => containedPath(dir, 'a\0b', by), (e: Error) => e instanceof ContainmentError && /not a usable file name/.test(e.message));
  assert.throws(() => containedPath(dir, '', by), ContainmentError);
  assert.equal(containedPath(dir, 'sub/missing.safetensors', by), path.join(dir, 'sub', 'missing.safetensors'));
  assert.equal(containedPath(dir, 'sub/../x', by), path.join(dir, 'x'));
});
