// Lenient scheduler_config.json reading, validation messages, and the sampler/shift overrides.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { parseLenientJson } from '../src/io/lenient-json.js';
import { FlowDpmSolver } from '../src/schedulers/flow-dpm-solver.js';
import { FlowMatchEuler } from '../src/schedulers/flow-euler.js';
import {
  createScheduler,
  parseSchedulerConfig,
  readSchedulerConfig,
} from '../src/schedulers/scheduler-config.js';
import { fixturePath, fixtureTensor } from './helpers/fixtures.js';

const dpmConfigPath = fixturePath('scheduler_dpm_flow', 'component', 'scheduler_config.json');
const eulerConfigPath = fixturePath('scheduler_flow_euler', 'component', 'scheduler_config.json');

function withoutKey(text: string, key: string): string {
  const raw = JSON.parse(text.replace('-Infinity', '-1e999')) as Record<string, unknown>;
  assert.ok(key in raw, `test setup: ${key} is in the config`);
  const lines = text.split('\n').filter((line) => !line.trimStart().startsWith(`"${key}"`));
  return lines.join('\n');
}

test('lenient JSON: -Infinity, Infinity and NaN parse outside strings, strings stay untouched', () => {
  const parsed = parseLenientJson(
    '{"a": -Infinity, "b":Infinity, "c": [NaN, 1], "d": "x -Infinity NaN \\" Infinity", "NaN": null}',
    'inline.json',
  ) as Record<string, unknown>;
  assert.equal(parsed.a, -Infinity);
  assert.equal(parsed.b, Infinity);
  assert.ok(Number.isNaN((parsed.c as number[])[0]));
  assert.equal((parsed.c as number[])[1], 1);
  assert.equal(parsed.d, 'x -Infinity NaN " Infinity');
  assert.equal(parsed.NaN, null);
  assert.throws(() => parseLenientJson('{"a": Infinit}', 'broken.json'), /broken\.json: invalid JSON/);
});

test('the fixture DPM config (with lambda_min_clipped -Infinity) parses to SANA Flow-DPM-Solver settings', () => {
  const text = fs.readFileSync(dpmConfigPath, 'utf8');
  assert.match(text, /-Infinity/);
  const config = readSchedulerConfig(dpmConfigPath);
  assert.deepEqual(config, {
    kind: 'dpm',
    source: dpmConfigPath,
    className: 'DPMSolverMultistepScheduler',
    numTrainTimesteps: 1000,
    flowShift: 3,
    solverOrder: 2,
    lowerOrderFinal: true,
    eulerAtFinal: false,
    finalSigmasType: 'zero',
  });
  assert.ok(createScheduler(config) instanceof FlowDpmSolver);
});

test('the fixture Euler config parses, and a folder path finds scheduler_config.json', () => {
  const config = readSchedulerConfig(fixturePath('scheduler_flow_euler', 'component'));
  assert.equal(config.kind, 'euler');
  assert.equal(config.flowShift, 3);
  assert.equal(config.source, eulerConfigPath);
  assert.ok(createScheduler(config) instanceof FlowMatchEuler);
});

test('a missing required key is reported with the file and the key', () => {
  const text = fs.readFileSync(dpmConfigPath, 'utf8');
  for (const key of ['flow_shift', '_class_name', 'use_flow_sigmas', 'prediction_type']) {
    assert.throws(
      () => parseSchedulerConfig(withoutKey(text, key), dpmConfigPath),
      (err: Error) => err.message.startsWith(`${dpmConfigPath}: config key "${key}" must be `) && err.message.endsWith('(got missing)'),
      key,
    );
  }
  const eulerText = fs.readFileSync(eulerConfigPath, 'utf8');
  assert.throws(
    () => parseSchedulerConfig(withoutKey(eulerText, 'shift'), 'sched/scheduler_config.json'),
    /sched\/scheduler_config\.json: config key "shift" must be a number \(got missing\)/,
  );
});

test('optional keys fall back to diffusers defaults', () => {
  const minimal = JSON.stringify({
    _class_name: 'DPMSolverMultistepScheduler',
    flow_shift: 4.0,
    use_flow_sigmas: true,
    prediction_type: 'flow_prediction',
  });
  const config = parseSchedulerConfig(minimal, 'minimal.json');
  assert.equal(config.kind, 'dpm');
  assert.equal(config.numTrainTimesteps, 1000);
  assert.equal(config.kind === 'dpm' && config.solverOrder, 2);
  assert.equal(config.kind === 'dpm' && config.finalSigmasType, 'zero');
});

test('unsupported or mistyped values name the key and the file', () => {
  const text = fs.readFileSync(dpmConfigPath, 'utf8');
  const cases: Array<[string, string, RegExp]> = [
    ['"solver_order": 2', '"solver_order": 3', /config key "solver_order" must be one of 1, 2 \(got 3\)/],
    ['"use_flow_sigmas": true', '"use_flow_sigmas": false', /config key "use_flow_sigmas" must be one of true \(got false\)/],
    ['"flow_shift": 3.0', '"flow_shift": "3"', /config key "flow_shift" must be a number \(got "3"\)/],
    ['"flow_shift": 3.0', '"flow_shift": -1', /config key "flow_shift" must be a positive number \(got -1\)/],
    ['"lower_order_final": true', '"lower_order_final": 1', /"lower_order_final" must be true or false/],
    ['"final_sigmas_type": "zero"', '"final_sigmas_type": "sigma_min"', /config key "final_sigmas_type" must be one of "zero" \(got "sigma_min"\)/],
    ['"DPMSolverMultistepScheduler"', '"EulerDiscreteScheduler"', /"_class_name" is "EulerDiscreteScheduler"/],
  ];
  for (const [from, to, message] of cases) {
    assert.ok(text.includes(from), `test setup: ${from}`);
    assert.throws(() => parseSchedulerConfig(text.replace(from, to), 'x/scheduler_config.json'), (err: Error) =>
      err.message.startsWith('x/scheduler_config.json: ') && message.test(err.message),
    );
  }
  assert.throws(() => parseSchedulerConfig('[1]', 'list.json'), /list\.json: expected a JSON object/);
  assert.throws(
    () => readSchedulerConfig('/nonexistent/scheduler_config.json'),
    /\/nonexistent\/scheduler_config\.json: cannot read/,
  );
});

test('overrides switch the sampler and the shift, matching the other fixture', () => {
  const dpmConfig = readSchedulerConfig(dpmConfigPath);
  const eulerConfig = readSchedulerConfig(eulerConfigPath);

  const euler = createScheduler(dpmConfig, { sampler: 'euler' });
  assert.ok(euler instanceof FlowMatchEuler);
  euler.setTimesteps(20);
  const eulerExpected = fixtureTensor('scheduler_flow_euler', 'outputs', 'shift3_steps20.sigmas').toFloat32();
  assert.deepEqual(euler.sigmas, eulerExpected);

  const dpm = createScheduler(eulerConfig, { sampler: 'dpm', flowShift: 6 });
  assert.ok(dpm instanceof FlowDpmSolver);
  dpm.setTimesteps(20);
  const dpmExpected = fixtureTensor('scheduler_dpm_flow', 'outputs', 'shift6_steps20.timesteps').data as BigInt64Array;
  assert.deepEqual(dpm.timesteps, Array.from(dpmExpected, Number));

  assert.throws(() => createScheduler(dpmConfig, { flowShift: -1 }), /override flowShift must be a positive number/);
  assert.throws(
    () => createScheduler(dpmConfig, { sampler: 'heun' as never }),
    /override sampler must be "dpm" or "euler", got "heun"/,
  );
});
