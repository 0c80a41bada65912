import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph, relu } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { Backend, CompiledModel, ModelSession, SessionOptions } from '../src/runtime/backend.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { SessionCache } from '../src/runtime/session-cache.js';

function model(): CompiledModel {
  const g = new Graph();
  g.output(relu(g.input('x', 'float32', ['N'])), 'y');
  return compileGraph(g);
}

/** Counts the sessions created and released through it. */
function countingBackend(): Backend & { created: number; released: number } {
  const b = {
    name: 'counting',
    created: 0,
    released: 0,
    async createSession(m: CompiledModel, o?: SessionOptions): Promise<ModelSession> {
      b.created++;
      const s = await nodeBackend.createSession(m, o);
      return { ...s, inputNames: s.inputNames, outputNames: s.outputNames, run: s.run.bind(s), release: async () => { b.released++; await s.release(); } };
    },
  };
  return b;
}

test('one session per compiled graph and options; released after its last user', async () => {
  const backend = countingBackend();
  const cache = new SessionCache(backend);
  const a = await cache.acquire(model(), { threads: 1 });
  const b = await cache.acquire(model(), { threads: 1 });
  assert.equal(backend.created, 1, 'the same graph is built once');
  const c = await cache.acquire(model(), { threads: 2 });
  assert.equal(backend.created, 2, 'other session options get their own session');
  const { y } = await b.run({ x: HostTensor.float32([3], [-1, 0, 2]) });
  assert.deepEqual([...y.data], [0, 0, 2]);
  await a.release();
  await a.release(); // a second release by the same user is a no-op
  assert.equal(backend.released, 0, 'still in use by b');
  await b.release();
  assert.equal(backend.released, 1);
  await c.release();
  assert.equal(backend.released, 2);
  assert.equal(cache.size, 0);
});

test('models with in-memory weights are never shared (their weights are not part of the key)', async () => {
  const backend = countingBackend();
  const cache = new SessionCache(backend);
  const m = { ...model(), memoryFiles: new Map([['w.bin', new Uint8Array(4)]]) };
  assert.equal(SessionCache.key(backend, m, {}), undefined);
  const plain = model();
  assert.equal(typeof SessionCache.key(backend, plain, {}), 'string');
});
