// ref: SANA.md §5.2, §5.4, §5.5. Reads a checkpoint's scheduler/scheduler_config.json (diffusers' file, which may
// hold -Infinity), checks the keys the samplers use, and builds the sampler, optionally overridden: the sampler
// ('dpm' = Flow-DPM-Solver, 'euler' = Flow-Euler) and the flow shift, which the two share (flow_shift / shift).
// Keys missing from the file take diffusers' defaults, except the ones whose default would silently give a
// different sampler (the class, the flow shift, use_flow_sigmas, prediction_type): those are required.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { containedFile } from '../io/contained-path.js';
import { ConfigReader } from '../io/config.js';
import { parseLenientJson } from '../io/lenient-json.js';
import { FlowDpmSolver, FLOW_DPM_SOLVER_DEFAULTS } from './flow-dpm-solver.js';
import { FlowMatchEuler } from './flow-euler.js';
import { FlowScheduler } from './flow-scheduler.js';

export const SCHEDULER_CONFIG_FILE = 'scheduler_config.json';

/** The flow-matching samplers a request can choose between (SCM is tied to Sprint models, not a choice). */
export type SamplerKind = 'dpm' | 'euler';

const CLASS_TO_SAMPLER: Readonly<Record<string, SamplerKind | 'scm'>> = {
  DPMSolverMultistepScheduler: 'dpm',
  FlowMatchEulerDiscreteScheduler: 'euler',
  SCMScheduler: 'scm',
};

interface CommonSchedulerConfig {
  /** Where the config came from, for messages. */
  source: string;
  className: string;
  numTrainTimesteps: number;
  flowShift: number;
}

export interface DpmSchedulerConfig extends CommonSchedulerConfig {
  kind: 'dpm';
  solverOrder: 1 | 2;
  lowerOrderFinal: boolean;
  eulerAtFinal: boolean;
  finalSigmasType: 'zero';
}

export interface EulerSchedulerConfig extends CommonSchedulerConfig {
  kind: 'euler';
}

/** SANA-Sprint's TrigFlow consistency sampler (schedulers/scm.ts); it has no flow shift. */
export interface ScmSchedulerFileConfig {
  kind: 'scm';
  source: string;
  className: string;
  numTrainTimesteps: number;
  sigmaData: number;
}

export type FlowSchedulerConfig = DpmSchedulerConfig | EulerSchedulerConfig;
export type SchedulerConfig = FlowSchedulerConfig | ScmSchedulerFileConfig;

export interface SchedulerOverrides {
  sampler?: SamplerKind;
  flowShift?: number;
}

export class SchedulerConfigError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'SchedulerConfigError';
  }
}

export function parseSchedulerConfig(text: string, source: string): SchedulerConfig {
  const raw = parseLenientJson(text, source);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SchedulerConfigError(source, 'expected a JSON object');
  }
  const reader = new ConfigReader(source, raw as Record<string, unknown>);
  const className = reader.string('_class_name');
  const kind = CLASS_TO_SAMPLER[className];
  if (!kind) {
    const supported = Object.keys(CLASS_TO_SAMPLER).join(', ');
    reader.fail('_class_name', `is ${JSON.stringify(className)}; supported: ${supported}`);
  }
  const numTrainTimesteps = reader.positiveInt('num_train_timesteps', 1000);
  if (kind === 'scm') {
    reader.choice('prediction_type', ['trigflow'], 'trigflow');
    return { kind, source: reader.file, className, numTrainTimesteps, sigmaData: reader.positiveNumber('sigma_data', 0.5) };
  }
  return kind === 'dpm'
    ? readDpmConfig(reader, className, numTrainTimesteps)
    : readEulerConfig(reader, className, numTrainTimesteps);
}

function readDpmConfig(reader: ConfigReader, className: string, numTrainTimesteps: number): DpmSchedulerConfig {
  reader.choice('use_flow_sigmas', [true]);
  reader.choice('prediction_type', ['flow_prediction']);
  reader.choice('algorithm_type', ['dpmsolver++'], 'dpmsolver++');
  reader.choice('solver_type', ['midpoint'], 'midpoint');
  reader.choice('thresholding', [false], false);
  // diffusers checks these before use_flow_sigmas, so any of them would replace the flow schedule.
  for (const key of ['use_karras_sigmas', 'use_exponential_sigmas', 'use_beta_sigmas', 'use_lu_lambdas']) {
    reader.choice(key, [false], false);
  }
  return {
    kind: 'dpm',
    source: reader.file,
    className,
    numTrainTimesteps,
    flowShift: reader.positiveNumber('flow_shift'),
    solverOrder: reader.choice('solver_order', [1, 2] as const, FLOW_DPM_SOLVER_DEFAULTS.solverOrder),
    lowerOrderFinal: reader.bool('lower_order_final', FLOW_DPM_SOLVER_DEFAULTS.lowerOrderFinal),
    eulerAtFinal: reader.bool('euler_at_final', FLOW_DPM_SOLVER_DEFAULTS.eulerAtFinal),
    finalSigmasType: reader.choice('final_sigmas_type', ['zero'] as const, FLOW_DPM_SOLVER_DEFAULTS.finalSigmasType),
  };
}

function readEulerConfig(reader: ConfigReader, className: string, numTrainTimesteps: number): EulerSchedulerConfig {
  // Dynamic shifting needs a resolution-dependent mu that SanaPipeline never passes.
  reader.choice('use_dynamic_shifting', [false], false);
  reader.choice('invert_sigmas', [false], false);
  reader.choice('shift_terminal', [null], null);
  reader.choice('stochastic_sampling', [false], false);
  for (const key of ['use_karras_sigmas', 'use_exponential_sigmas', 'use_beta_sigmas']) {
    reader.choice(key, [false], false);
  }
  const flowShift = reader.positiveNumber('shift');
  return { kind: 'euler', source: reader.file, className, numTrainTimesteps, flowShift };
}

/** Reads `scheduler_config.json`, given its path or the folder that holds it (e.g. `<model>/scheduler`). */
export function readSchedulerConfig(fileOrDir: string): SchedulerConfig {
  let file = fileOrDir;
  if (fs.existsSync(fileOrDir) && fs.statSync(fileOrDir).isDirectory()) {
    file = path.join(fileOrDir, SCHEDULER_CONFIG_FILE);
  }
  let text: string;
  // inside its folder and a regular file, checked before a byte is read (a link out of a model folder is refused)
  containedFile(file);
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SchedulerConfigError(file, `cannot read scheduler config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseSchedulerConfig(text, file);
}

/** Builds the sampler the config describes, or the one the overrides ask for with the config's shared settings. */
export function createScheduler(config: SchedulerConfig, overrides: SchedulerOverrides = {}): FlowScheduler {
  if (config.kind === 'scm') {
    throw new SchedulerConfigError(config.source, 'SCMScheduler is a TrigFlow sampler for SANA-Sprint models, not a flow-matching one (see schedulers/scm.ts)');
  }
  const sampler = overrides.sampler ?? config.kind;
  if (sampler !== 'dpm' && sampler !== 'euler') {
    throw new SchedulerConfigError(
      config.source,
      `override sampler must be "dpm" or "euler", got ${JSON.stringify(sampler)}`,
    );
  }
  const flowShift = overrides.flowShift ?? config.flowShift;
  if (typeof flowShift !== 'number' || !Number.isFinite(flowShift) || flowShift <= 0) {
    throw new SchedulerConfigError(config.source, `override flowShift must be a positive number, got ${flowShift}`);
  }
  const { numTrainTimesteps } = config;
  if (sampler === 'euler') return new FlowMatchEuler({ numTrainTimesteps, shift: flowShift });
  if (config.kind === 'dpm') {
    const { solverOrder, lowerOrderFinal, eulerAtFinal, finalSigmasType } = config;
    return new FlowDpmSolver({
      numTrainTimesteps,
      flowShift,
      solverOrder,
      lowerOrderFinal,
      eulerAtFinal,
      finalSigmasType,
    });
  }
  // An Euler checkpoint run with Flow-DPM-Solver: SANA's solver settings (diffusers' defaults) with its shift.
  return new FlowDpmSolver({ numTrainTimesteps, flowShift });
}
