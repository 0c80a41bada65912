// Issue #17: the trainers read config.json through the same checked reader as the rest (src/io/config.ts:
// contained in its folder, bounded, lenient about Python's tokens, errors naming the file and key). Shown on the
// VAE trainer's --init folder and the transformer trainer's base model, and by a scan of src/ for a raw
// JSON.parse of a file's text, which would bypass the reader. ref: src/io/config.ts, src/train/*-trainer.ts

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_MODEL_DIR } from '../src/pipeline/components.js';
import { writeShapesDataset } from '../src/train/shapes/dataset.js';
import { trainTransformer } from '../src/train/transformer-trainer.js';
import { trainVae } from '../src/train/vae-trainer.js';
import { repoRoot } from './helpers/fixtures.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-h17-train-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const data = path.join(root, 'data');
writeShapesDataset(data, { count: 4, seed: 1, size: 64, split: 'train' });

const vaeRun = (init: string) =>
  trainVae({
    data, out: path.join(root, `out-${path.basename(init)}`), init, steps: 1, batch: 1, crop: 64, imageSize: 64, lr: 1e-3, warmupSteps: 0,
    decay: 'constant', weightDecay: 0, maxGradNorm: null, seed: 0, checkpointEvery: 1, validationImages: 1, threads: 1,
  });

function vaeCopy(name: string, edit: (config: Record<string, unknown>) => void): string {
  const dir = path.join(root, name);
  fs.cpSync(path.join(DEFAULT_MODEL_DIR, 'vae'), dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(config);
  fs.writeFileSync(file, JSON.stringify(config));
  return dir;
}

test('train-vae --init: a config.json linking out of its folder is refused, naming the file; no byte of the outside file is shown', async () => {
  const dir = vaeCopy('linked', () => {});
  const secret = path.join(root, 'secret.json');
  fs.writeFileSync(secret, '"SECRET-h17"');
  fs.rmSync(path.join(dir, 'config.json'));
  fs.symlinkSync(secret, path.join(dir, 'config.json'));
  await assert.rejects(vaeRun(dir), (e: Error) => {
    assert.match(e.message, /linked[/\\]config\.json/);
    assert.doesNotMatch(e.message, /SECRET/);
    return true;
  });
});

test('train-vae --init: a bad value names the file and the key', async () => {
  const dir = vaeCopy('bad-key', (c) => (c.latent_channels = 'sixteen'));
  await assert.rejects(vaeRun(dir), /bad-key[/\\]config\.json: config key "latent_channels" must be/);
});

test("train: the base model's transformer config.json with a value out of range names the file and the key", async () => {
  const base = path.join(root, 'base');
  fs.cpSync(DEFAULT_MODEL_DIR, base, { recursive: true });
  const file = path.join(base, 'transformer', 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  config.num_layers = 2 ** 31;
  fs.writeFileSync(file, JSON.stringify(config));
  await assert.rejects(
    trainTransformer({
      data, base, out: path.join(root, 'out-t'), steps: 1, batch: 1, lr: 1e-3, warmupSteps: 0, decay: 'constant', weightDecay: 0,
      maxGradNorm: null, emaDecay: null, captionDropout: 0, logitMean: 0, logitStd: 1, imageSize: 64, maxSequenceLength: 300, seed: 0,
      checkpointEvery: 1, validationPrompts: [], validationSteps: 1, threads: 1,
    }),
    /base[/\\]transformer[/\\]config\.json: config key "num_layers" must be an integer of at most 16777216/,
  );
});

test('no file under src/ is parsed with a raw JSON.parse of its text (every JSON file goes through the checked readers)', () => {
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) {
        const text = fs.readFileSync(full, 'utf8');
        // JSON.parse of something read from a file in the same expression: readFileSync(...) or a read buffer
        for (const m of text.matchAll(/JSON\.parse\(\s*fs\.readFileSync/g)) offenders.push(`${path.relative(repoRoot, full)} at ${m.index}`);
      }
    }
  };
  walk(path.join(repoRoot, 'src'));
  assert.deepEqual(offenders, []);
});
