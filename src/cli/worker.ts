// `sana worker`: runs the jobs of a Redis-backed `sana serve --queue` on this machine's CPU, until SIGINT/SIGTERM.
// ref: docs/server.md "Scale-out"

import { parseArgs } from 'node:util';
import { displayRedisUrl, parseRedisUrl } from '../server/redis-connection.js';
import { startSanaWorker } from '../server/redis-worker.js';
import { parseModelSpec } from '../server/served-model.js';
import { parseNumber, parsePositiveInt } from './arg-values.js';
import { UsageError } from './errors.js';
import { DEVICE_HELP, PRECISION_HELP } from './device-flag.js';
import { MODEL_LOAD_FLAGS, modelLoadFromFlags } from './model-load-flags.js';

export const WORKER_HELP = `Usage: sana worker --queue redis://HOST:PORT [--model [NAME=]DIR|REPO_ID ...] [options]

Takes jobs from the Redis queue a \`sana serve --queue\` fills and runs them here; start any number, on any number
of machines. Model names must match the API server's (NAME=DIR on both sides, or the same folder name).

Options:
  --queue redis://HOST:PORT[/DB]  the Redis of the API server (required)
  --model [NAME=]DIR|REPO_ID  a model to take jobs for (repeatable; default: the bundled model)
  --name ID                   this worker's name in /metrics (default: host name and process id)
  --output-dir DIR            also write every image to DIR/<job id>-<k>.png (atomically)
  --stall-seconds S           a job whose worker stops renewing its lock for S s is retried elsewhere (default 30)
  --max-attempts N            most starts of one job when workers die under it (default 3)
  --result-minutes M          how long images stay in Redis for the API to fetch (default 60)
  --text-quantization Q       none (default), int8 or int4, as sana generate
  --transformer-quantization Q  none (default) or int8, as sana generate
  --vae-tiling, --vae-tile-size N, --vae-tile-stride S   tiled VAE decode, as sana generate
  --lora FILE[:SCALE]         a LoRA for the transformers (repeatable), as sana generate
  --lora-fuse                 fuse the LoRAs into the weights at load
  --threads N                 CPU threads (default: all cores)
  ${DEVICE_HELP.replace('D                 ', 'D                  ')}
  ${PRECISION_HELP}
  -h, --help                  show this help

SIGINT or SIGTERM: takes no new job, finishes the running one, and exits 0.
`;

export async function workerCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      queue: { type: 'string' },
      model: { type: 'string', multiple: true },
      name: { type: 'string' },
      'output-dir': { type: 'string' },
      'stall-seconds': { type: 'string' },
      'max-attempts': { type: 'string' },
      'result-minutes': { type: 'string' },
      ...MODEL_LOAD_FLAGS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    process.stdout.write(WORKER_HELP);
    return;
  }
  if (v.queue === undefined) throw new UsageError('--queue redis://HOST:PORT is required (the Redis of `sana serve --queue`)');
  parseRedisUrl(v.queue);
  const positive = (flag: 'stall-seconds' | 'result-minutes') => {
    if (v[flag] === undefined) return undefined;
    const n = parseNumber(v[flag]!, `--${flag}`);
    if (!(n > 0)) throw new UsageError(`--${flag}: expected a number > 0, got "${v[flag]}"`);
    return n;
  };
  if (v.name !== undefined && !/^[\x21-\x7e]{1,64}$/.test(v.name)) throw new UsageError(`--name: expected 1-64 visible ASCII characters, got "${v.name}"`);

  const load = await modelLoadFromFlags(v);
  process.stderr.write('loading models...\n');
  const worker = await startSanaWorker({
    queue: v.queue,
    models: (v.model ?? []).map(parseModelSpec),
    name: v.name,
    outputDir: v['output-dir'],
    stallSeconds: positive('stall-seconds'),
    maxAttempts: v['max-attempts'] === undefined ? undefined : parsePositiveInt(v['max-attempts'], '--max-attempts'),
    resultMinutes: positive('result-minutes'),
    load,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const names = worker.models.map((m) => `${m.id} (${m.name})`).join(', ');
  process.stderr.write(`sana worker ${worker.id}: taking jobs from ${displayRedisUrl(v.queue)}  models: ${names}\n`);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`${signal}: stopping (finishing the running job)...\n`);
      worker.close().then(resolve, (e: unknown) => {
        process.stderr.write(`error while stopping: ${(e as Error).message}\n`);
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  process.stderr.write('stopped\n');
}
