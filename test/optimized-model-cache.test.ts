// The optimised-model cache (src/runtime/optimized-model-cache.ts): the first CPU session of a model saves ONNX
// Runtime's optimised graph, later sessions open it (bit-identical outputs), a changed checkpoint gets a new
// folder and the old one is removed (one made with other session settings stays), a damaged folder is rebuilt
// from the graph, and small models are left alone under 'auto'. On dcae_tiny (a copy, so nothing is written into the fixtures), which has Winograd convolutions
// when its threshold is lowered, so session creation folds kernels as it does for the real DC-AE.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { loadDcae } from '../src/models/dcae/model.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { optimizedModelCacheEvents } from '../src/runtime/optimized-model-cache.js';
import { fixturePath, fixtureTensor } from './helpers/fixtures.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-ort-cache-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function copyModel(name: string): string {
  const dir = path.join(root, name);
  fs.cpSync(fixturePath('dcae_tiny', 'component'), dir, { recursive: true });
  fs.chmodSync(dir, 0o755); // the fixtures are read-only; the cache goes beside the weights when it can
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  return dir;
}

const cacheFolders = (dir: string) =>
  fs.existsSync(path.join(dir, '.sana-ts-cache')) ? fs.readdirSync(path.join(dir, '.sana-ts-cache')).filter((f) => f.startsWith('ort-')) : [];

async function decode(dir: string, cache: boolean | 'auto', prepack?: boolean): Promise<Float32Array> {
  // nodeBackend (not the shared-session backend), so each load really creates a session
  const dcae = await loadDcae(dir, { parts: ['decoder'], threads: 1, winogradMinChannels: 1, cacheOptimizedModel: cache, backend: nodeBackend, prepack });
  try {
    const latent = fixtureTensor('dcae_tiny', 'outputs', 'latent') as HostTensor;
    return (await dcae.decode(latent)).toFloat32();
  } finally {
    await dcae.release();
  }
}

const events = () => ({ ...optimizedModelCacheEvents });
const delta = (before: Record<string, number>) => {
  const now = events();
  return { saved: now.saved - before.saved, reused: now.reused - before.reused, rebuilt: now.rebuilt - before.rebuilt };
};

describe('optimised-model cache', () => {
  it('saves on the first session, reuses on the next, with identical outputs', async () => {
    const dir = copyModel('reuse');
    const uncached = await decode(dir, false);
    assert.deepEqual(cacheFolders(dir), [], 'off: nothing written');
    let before = events();
    const first = await decode(dir, true);
    assert.deepEqual(delta(before), { saved: 1, reused: 0, rebuilt: 0 });
    const [folder] = cacheFolders(dir);
    assert.match(folder, /^ort-dcae_decoder-[0-9a-f]{20}$/);
    for (const f of ['model.onnx', 'done.json']) assert.ok(fs.existsSync(path.join(dir, '.sana-ts-cache', folder, f)), f);
    before = events();
    const second = await decode(dir, true);
    assert.deepEqual(delta(before), { saved: 0, reused: 1, rebuilt: 0 });
    assert.deepEqual(Array.from(first), Array.from(uncached));
    assert.deepEqual(Array.from(second), Array.from(uncached));
  });

  it('a changed checkpoint gets a new folder and the old one is removed', async () => {
    const dir = copyModel('changed');
    await decode(dir, true);
    const [old] = cacheFolders(dir);
    const weights = path.join(dir, 'diffusion_pytorch_model.safetensors');
    const later = new Date(fs.statSync(weights).mtimeMs + 5000);
    fs.utimesSync(weights, later, later);
    const before = events();
    await decode(dir, true);
    assert.deepEqual(delta(before), { saved: 1, reused: 0, rebuilt: 0 });
    const now = cacheFolders(dir);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], old);
  });

  it('sessions with and without prepacking keep a folder each instead of replacing each other', async () => {
    const dir = copyModel('settings');
    const reference = await decode(dir, false);
    let before = events();
    await decode(dir, true);
    await decode(dir, true, false);
    assert.deepEqual(delta(before), { saved: 2, reused: 0, rebuilt: 0 });
    assert.equal(cacheFolders(dir).length, 2);
    before = events();
    const packed = await decode(dir, true);
    const unpacked = await decode(dir, true, false);
    assert.deepEqual(delta(before), { saved: 0, reused: 2, rebuilt: 0 });
    assert.deepEqual(Array.from(packed), Array.from(reference));
    assert.ok(unpacked.every((v, i) => Math.abs(v - reference[i]) <= 1e-4 * (1 + Math.abs(reference[i]))), 'unpacked within rounding');
  });

  it('a damaged folder is removed and the session made from the graph, with the right result', async () => {
    const dir = copyModel('damaged');
    const reference = await decode(dir, false);
    await decode(dir, true);
    const [folder] = cacheFolders(dir);
    fs.writeFileSync(path.join(dir, '.sana-ts-cache', folder, 'model.onnx'), 'not a model');
    const before = events();
    const out = await decode(dir, true);
    assert.deepEqual(delta(before), { saved: 0, reused: 0, rebuilt: 1 });
    assert.deepEqual(Array.from(out), Array.from(reference));
    assert.deepEqual(cacheFolders(dir), []);
  });

  it("'auto' leaves a model with less than 64 MB of weights alone", async () => {
    const dir = copyModel('auto');
    const before = events();
    await decode(dir, 'auto');
    assert.deepEqual(delta(before), { saved: 0, reused: 0, rebuilt: 0 });
    assert.deepEqual(cacheFolders(dir), []);
  });
});
