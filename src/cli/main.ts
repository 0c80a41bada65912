#!/usr/bin/env node
// The `sana` command: thin subcommands over the library.

import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { DOCTOR_HELP, doctorCommand } from './doctor.js';
import { readJsonFile } from '../io/config.js';
import { EXIT_BAD_INPUT } from './errors.js';
import { GENERATE_HELP, generateCommand } from './generate.js';
import { MAKE_SHAPES_HELP, makeShapesCommand } from './make-shapes.js';
import { RUN_HELP, runCommand } from './run.js';
import { SERVE_HELP, serveCommand } from './serve.js';
import { TRAIN_DEFAULT_HELP, TRAIN_HELP, trainCommand, trainDefaultCommand } from './train.js';
import { TRAIN_VAE_HELP, trainVaeCommand } from './train-vae.js';
import { WORKER_HELP, workerCommand } from './worker.js';

const HELP = `Usage: sana <command> [options]

SANA text-to-image on ONNX Runtime.

Commands:
  generate PROMPT   text to PNG images (sana generate --help)
  run <component>   run one model component on named tensors (sana run --help)
  serve             HTTP API and web page (sana serve --help)
  worker            run the jobs of a Redis-backed sana serve --queue (sana worker --help)
  doctor DIR        validate a model folder without generating (sana doctor --help)
  train             train a SANA transformer on a data folder (sana train --help)
  train-vae         train the DC-AE autoencoder on a data folder (sana train-vae --help)
  train-default     retrain the bundled default model from scratch (sana train-default --help)
  make-shapes       write the procedural coloured-shapes data set (sana make-shapes --help)

Options:
  -h, --help        show this help
  -v, --version     print the version
`;

interface Command {
  help: string;
  run(argv: string[]): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  generate: { help: GENERATE_HELP, run: generateCommand },
  run: { help: RUN_HELP, run: runCommand },
  serve: { help: SERVE_HELP, run: serveCommand },
  worker: { help: WORKER_HELP, run: workerCommand },
  doctor: { help: DOCTOR_HELP, run: doctorCommand },
  train: { help: TRAIN_HELP, run: trainCommand },
  'train-vae': { help: TRAIN_VAE_HELP, run: trainVaeCommand },
  'train-default': { help: TRAIN_DEFAULT_HELP, run: trainDefaultCommand },
  'make-shapes': { help: MAKE_SHAPES_HELP, run: makeShapesCommand },
};

function version(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const pkg = readJsonFile(path.resolve(here, '..', '..', '..', 'package.json')) as { version?: unknown };
  return String(pkg.version);
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    process.stdout.write(HELP);
    return first === undefined ? EXIT_BAD_INPUT : 0;
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(`sana-ts ${version()}\n`);
    return 0;
  }
  const command = COMMANDS[first];
  if (!command) {
    process.stderr.write(`sana: unknown command "${first}"\n\n${HELP}`);
    return EXIT_BAD_INPUT;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    // Programming errors keep their stack; everything else (bad arguments, files, weights, configs) is reported as
    // the plain message, which names the file, key or argument at fault.
    const isBug =
      !err.code?.startsWith('ERR_PARSE_ARGS') && (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError);
    process.stderr.write(`sana ${first}: ${err.message ?? String(e)}\n`);
    if (isBug || process.env.SANA_DEBUG) process.stderr.write(`${err.stack}\n`);
    return isBug ? 1 : EXIT_BAD_INPUT;
  }
}

const invokedDirectly = process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
