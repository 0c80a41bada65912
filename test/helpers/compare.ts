// Numeric comparison with the fixtures' tolerance rule:
// |actual - expected| <= atol + rtol * |expected| for every element, and ||actual - expected|| / ||expected|| <= rel_l2.

import assert from 'node:assert/strict';
import { HostTensor, toFloat32Array } from '../../src/io/host-tensor.js';

export interface CloseOptions {
  atol: number;
  rtol?: number;
  rel_l2?: number;
}

export interface CloseReport {
  maxAbs: number;
  worstIndex: number;
  relL2: number;
}

export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions): CloseReport {
  const rtol = opts.rtol ?? 0;
  let maxAbs = 0;
  let worstIndex = -1;
  let worstExcess = 0;
  let diff2 = 0;
  let ref2 = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const d = Math.abs(a - e);
    if (!(d <= maxAbs) || Number.isNaN(d)) {
      maxAbs = Number.isNaN(d) ? Infinity : d;
    }
    const excess = Number.isNaN(d) ? Infinity : d - (opts.atol + rtol * Math.abs(e));
    if (excess > worstExcess) {
      worstExcess = excess;
      worstIndex = i;
    }
    diff2 += d * d;
    ref2 += e * e;
  }
  const relL2 = ref2 > 0 ? Math.sqrt(diff2 / ref2) : Math.sqrt(diff2);
  return { maxAbs, worstIndex, relL2 };
}

export function assertClose(
  actual: HostTensor | ArrayLike<number>,
  expected: HostTensor | ArrayLike<number>,
  opts: CloseOptions,
  what = 'tensor',
): CloseReport {
  if (actual instanceof HostTensor && expected instanceof HostTensor) {
    assert.deepEqual([...actual.shape], [...expected.shape], `${what}: shape`);
  }
  const a = actual instanceof HostTensor ? toFloat32Array(actual) : actual;
  const e = expected instanceof HostTensor ? toFloat32Array(expected) : expected;
  assert.equal(a.length, e.length, `${what}: element count`);
  const report = compareArrays(a, e, opts);
  if (report.worstIndex >= 0) {
    const i = report.worstIndex;
    assert.fail(
      `${what}: element ${i} is ${a[i]}, expected ${e[i]} (|diff| ${Math.abs(a[i] - e[i])} > atol ${opts.atol} + rtol ${opts.rtol ?? 0} * |expected|); max |diff| ${report.maxAbs}`,
    );
  }
  if (opts.rel_l2 !== undefined) {
    assert.ok(report.relL2 <= opts.rel_l2, `${what}: relative L2 error ${report.relL2} > ${opts.rel_l2}`);
  }
  return report;
}
