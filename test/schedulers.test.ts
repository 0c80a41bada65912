// Flow-DPM-Solver and Flow-Euler against the scheduler_dpm_flow / scheduler_flow_euler fixtures: every schedule
// (timesteps, sigmas) for every step count and shift, and the 3- and 20-step sampling loops with the fixture's
// stand-in model. Schedulers are built the way the pipeline builds them: from the fixture's scheduler_config.json.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostTensor } from '../src/io/host-tensor.js';
import { FlowDpmSolver } from '../src/schedulers/flow-dpm-solver.js';
import { FlowMatchEuler } from '../src/schedulers/flow-euler.js';
import { FlowScheduler } from '../src/schedulers/flow-scheduler.js';
import { createScheduler, readSchedulerConfig } from '../src/schedulers/scheduler-config.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest, loadTensors } from './helpers/fixtures.js';

const f32 = Math.fround;

/** The fixtures' stand-in model v(x, t) = tanh(x) * (t / 1000) - 0.5 x + 0.1, evaluated in float32 like torch. */
function standInModel(x: Float32Array, timestep: number): Float32Array {
  const scale = f32(timestep / 1000);
  const out = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) {
    out[k] = f32(f32(f32(f32(Math.tanh(x[k])) * scale) - f32(0.5 * x[k])) + f32(0.1));
  }
  return out;
}

interface SetTimestepsEntry {
  config_override: Record<string, number>;
}

function numbersOf(t: HostTensor): number[] {
  return t.dtype === 'int64' ? Array.from(t.data as BigInt64Array, Number) : Array.from(t.data as Float32Array);
}

for (const [fixture, shiftKey] of [
  ['scheduler_dpm_flow', 'flow_shift'],
  ['scheduler_flow_euler', 'shift'],
] as const) {
  const manifest = loadManifest(fixture);
  const config = readSchedulerConfig(fixturePath(fixture, 'component'));
  const covered = new Set<string>();

  /** Compares with the manifest's tolerance for `name`: exact for the int64 DPM timesteps. */
  function checkTensor(name: string, actual: ArrayLike<number>): void {
    covered.add(name);
    const expected = fixtureTensor(fixture, 'outputs', name);
    const tolerance = manifest.tolerance?.[name] as Record<string, number | boolean> | undefined;
    assert.ok(tolerance, `${fixture}: manifest has a tolerance for ${name}`);
    const expectedValues = numbersOf(expected);
    assert.equal(actual.length, expectedValues.length, `${name}: element count`);
    if (tolerance.exact === true) {
      assert.deepEqual(Array.from(actual), expectedValues, `${name}: exact`);
    } else {
      const options = { atol: tolerance.atol as number, rtol: tolerance.rtol as number };
      assertClose(actual, expectedValues, options, `${fixture} ${name}`);
    }
  }

  const schedules = manifest.set_timesteps as Record<string, SetTimestepsEntry>;
  for (const [key, entry] of Object.entries(schedules)) {
    test(`${fixture}: ${key} timesteps and sigmas`, () => {
      const steps = Number(/steps(\d+)$/.exec(key)![1]);
      const flowShift = entry.config_override[shiftKey];
      assert.equal(typeof flowShift, 'number', `${key}: config_override.${shiftKey}`);
      const scheduler = createScheduler(config, { flowShift });
      scheduler.setTimesteps(steps);
      checkTensor(`${key}.timesteps`, scheduler.timesteps);
      checkTensor(`${key}.sigmas`, scheduler.sigmas);
    });
  }

  for (const steps of [3, 20]) {
    test(`${fixture}: ${steps}-step sampling loop with the stand-in model`, () => {
      const scheduler: FlowScheduler = createScheduler(config);
      scheduler.setTimesteps(steps);
      let sample: Float32Array = fixtureTensor(fixture, 'inputs', 'sample').toFloat32().slice();
      const modelOutputs: number[] = [];
      const prevSamples: number[] = [];
      for (let i = 0; i < steps; i++) {
        assert.equal(scheduler.stepIndex, i);
        const v = standInModel(sample, scheduler.timesteps[i]);
        sample = scheduler.step(v, sample);
        modelOutputs.push(...v);
        prevSamples.push(...sample);
      }
      checkTensor(`steps${steps}.timesteps`, scheduler.timesteps);
      checkTensor(`steps${steps}.model_output`, modelOutputs);
      checkTensor(`steps${steps}.prev_sample`, prevSamples);
    });
  }

  test(`${fixture}: every output tensor is checked`, () => {
    const all = [...loadTensors(fixture, 'outputs').keys()].sort();
    assert.deepEqual(all.filter((name) => !covered.has(name)), [], 'fixture tensors without a test');
  });
}

test('Flow-DPM-Solver timesteps for shift 4 and 1 match the spec tables (SANA.md §5.2)', () => {
  const shift4 = new FlowDpmSolver({ flowShift: 4 });
  shift4.setTimesteps(20);
  assert.deepEqual(shift4.timesteps, [
    999, 986, 972, 957, 940, 922, 902, 881, 856, 829, 799, 765, 726, 682, 631, 571, 499, 413, 307, 173,
  ]);
  const shift1 = new FlowDpmSolver({ flowShift: 1 });
  shift1.setTimesteps(20);
  assert.deepEqual(shift1.timesteps, Array.from({ length: 20 }, (_, i) => 999 - 50 * i));
});

test('Flow-DPM-Solver: the last step is first order whenever final_sigmas_type is "zero" (diffusers rule)', () => {
  const sana = new FlowDpmSolver({ flowShift: 3 });
  // 20 >= 15 steps: lower_order_final alone would not apply, final_sigmas_type "zero" does.
  assert.equal(sana.isLowerOrderFinal(19, 20), true);
  assert.equal(sana.isLowerOrderFinal(18, 20), false);
  assert.equal(sana.isLowerOrderFinal(49, 50), true);
  const noLowerOrderFinal = new FlowDpmSolver({ flowShift: 3, lowerOrderFinal: false });
  assert.equal(noLowerOrderFinal.isLowerOrderFinal(2, 3), true);
});

test('Flow-DPM-Solver: the final step returns the data prediction x - sigma * v exactly', () => {
  const scheduler = new FlowDpmSolver({ flowShift: 3 });
  scheduler.setTimesteps(2);
  const x0 = Float32Array.from([0.5, -1.25, 2, 0]);
  const x1 = scheduler.step(standInModel(x0, scheduler.timesteps[0]), x0);
  const v1 = standInModel(x1, scheduler.timesteps[1]);
  const sigma = scheduler.sigmas[1];
  const expected = Float32Array.from(x1, (x, k) => f32(x - f32(sigma * v1[k])));
  assert.deepEqual(scheduler.step(v1, x1), expected);
});

test('Flow-Euler: one step moves by (sigma_next - sigma) * v', () => {
  const scheduler = new FlowMatchEuler({ shift: 3 });
  scheduler.setTimesteps(1);
  // One step: sigmas [1, 0] (sigma_max = shift(1) = 1, shifted again = 1), so x_next = x - v.
  assert.deepEqual(Array.from(scheduler.sigmas), [1, 0]);
  assert.deepEqual(scheduler.timesteps, [1000]);
  assert.deepEqual(scheduler.step(Float32Array.from([1, 2]), Float32Array.from([3, 5])), Float32Array.from([2, 3]));
});

test('schedulers reject misuse with clear errors', () => {
  for (const scheduler of [new FlowDpmSolver({ flowShift: 3 }), new FlowMatchEuler({ shift: 3 })] as FlowScheduler[]) {
    const x = new Float32Array(4);
    assert.throws(() => scheduler.step(x, x), /call setTimesteps\(n\) before step\(\)/);
    assert.throws(() => scheduler.setTimesteps(0), /numInferenceSteps must be a positive integer, got 0/);
    scheduler.setTimesteps(1);
    assert.throws(() => scheduler.step(new Float32Array(3), x), /modelOutput has 3 elements but sample has 4/);
    scheduler.step(x, x);
    assert.throws(() => scheduler.step(x, x), /all 1 steps are done/);
  }
  assert.throws(() => new FlowDpmSolver({ flowShift: 0 }), /flowShift must be a positive number/);
  assert.throws(() => new FlowMatchEuler({ shift: Number.NaN }), /shift must be a positive number/);
});
