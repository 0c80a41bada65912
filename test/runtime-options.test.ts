import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ortSessionOptions } from '../src/runtime/node-backend.js';

test('session options map to onnxruntime-node options', () => {
  // 1 thread: within the core count of any machine (more are capped at it, test/hardening-bounds.test.ts)
  const o = ortSessionOptions({ threads: 1, optimization: 'extended', prepack: false, noConstantFolding: true, memoryArena: false }, '/w');
  assert.equal(o.intraOpNumThreads, 1);
  assert.equal(o.graphOptimizationLevel, 'extended');
  assert.equal(o.enableCpuMemArena, false);
  assert.deepEqual(o.extra, {
    session: { disable_prepacking: '1', model_external_initializers_file_folder_path: '/w' },
    optimization: { disable_specified_optimizers: 'ConstantFolding' },
  });
  const d = ortSessionOptions({});
  assert.equal(d.enableCpuMemArena, true);
  assert.equal(d.graphOptimizationLevel, 'all');
  assert.ok((d.intraOpNumThreads as number) >= 1);
  assert.deepEqual(d.extra, { session: {} });
});
