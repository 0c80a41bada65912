// WeightBinder: strict binding reports every missing, mis-shaped and unexpected key in ONE error.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { WeightBinder } from '../src/nn/weight-binder.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-wb-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'm.safetensors');
writeSafetensors(file, {
  'model.a.weight': HostTensor.float32([2, 3]),
  'model.b.weight': HostTensor.float32([4]),
  'model.c.weight': new HostTensor('float16', [2], new Uint16Array(2)),
  'model.extra': HostTensor.float32([1]),
  'model.buffer.ignored': HostTensor.float32([1]),
});

describe('WeightBinder', () => {
  test('finish lists missing, mis-shaped and unexpected keys in one error', () => {
    const g = new Graph();
    const wb = new WeightBinder(g, WeightStore.open(file), { keyFor: (n) => `model.${n}`, ignore: (k) => k.includes('.buffer.') });
    const a = wb.get('a.weight', [2, 3]);
    assert.equal(a.dtype, 'float32');
    assert.deepEqual(a.shape, [2, 3]);
    assert.equal(wb.get('a.weight', [2, 3]), a, 'a second get returns the same tensor');
    wb.get('b.weight', [5]);
    wb.get('missing.weight', [7, 7]);
    const c = wb.get('c.weight', [2]);
    assert.equal(c.dtype, 'float32', 'fp16 weight is cast to the compute dtype');
    assert.equal(g.nodes.at(-1)?.opType, 'Cast');
    assert.throws(
      () => wb.finish('test model'),
      (e: Error) => {
        const m = e.message;
        assert.match(m, /^test model: the checkpoint .*m\.safetensors does not match the model config/);
        assert.match(m, /missing \(1\):\n {4}model\.missing\.weight \[7,7\]/);
        assert.match(m, /mis-shaped \(1\):\n {4}model\.b\.weight: file has \[4\], model expects \[5\]/);
        assert.match(m, /unexpected \(1\):\n {4}model\.extra/);
        assert.ok(!m.includes('ignored'), 'ignored keys are not reported');
        return true;
      },
    );
  });

  test('finish passes when every key is used exactly as expected; external data points into the file', () => {
    const g = new Graph();
    const store = WeightStore.open(file);
    const wb = new WeightBinder(g, store, { keyFor: (n) => `model.${n}`, ignore: (k) => !/\.(a|b|c)\.weight$/.test(k) });
    wb.get('a.weight', [2, 3]);
    wb.get('b.weight', [4]);
    wb.get('c.weight', [2]);
    wb.finish('ok model');
    const init = g.initializers.find((i) => i.name === 'a.weight')!;
    assert.equal(init.external?.location, 'm.safetensors');
    assert.equal(init.external?.offset, store.get('model.a.weight').info.fileOffset);
    assert.equal(init.external?.length, 24);
    assert.equal(g.externalDataFolder, fs.realpathSync(dir));
  });
});
