// `sana serve`: the HTTP API (native + OpenAI Images) and the web page over resident models, until SIGINT/SIGTERM.

import { parseArgs } from 'node:util';
import { startSanaServer } from '../server/server.js';
import { displayRedisUrl, parseRedisUrl } from '../server/redis-connection.js';
import { parseModelSpec } from '../server/served-model.js';
import { DEFAULT_LIMITS } from '../server/schemas.js';
import { parseBounded, parsePositiveInt } from './arg-values.js';
import { LIMITS, Limit, MIN_SIZE } from '../limits.js';
import { UsageError } from './errors.js';
import { DEVICE_HELP, PRECISION_HELP } from './device-flag.js';
import { MODEL_LOAD_FLAGS, modelLoadFromFlags } from './model-load-flags.js';

export const SERVE_HELP = `Usage: sana serve [--model [NAME=]DIR|REPO_ID ...] [--port 7860] [--host 127.0.0.1] [options]

Serves an HTTP API (native jobs with progress events, and the OpenAI Images API) and a web page at /.
Models stay loaded; each runs one job at a time from a bounded queue. API reference: docs/server.md.

Options:
  --model [NAME=]DIR|REPO_ID  a model to serve (repeatable; the first is the default; default: the bundled model)
  --host H                    address to listen on (default 127.0.0.1; other addresses need an API key)
  --port N                    port (default 7860; 0 = any free port)
  --api-key KEY               require "Authorization: Bearer KEY" on /api and /v1 (default: $SANA_API_KEY)
  --cors ORIGIN               allow browser requests from ORIGIN (default: none)
  --queue-size N              jobs waiting per model before 429 (default 16)
  --keep-jobs N               finished jobs kept with their images (default 100)
  --keep-minutes M            minutes a finished job is kept (default 60)
  --output-dir DIR            also write every image to DIR/<job id>-<k>.png
  --max-size N                largest width or height accepted (default ${DEFAULT_LIMITS.maxSize})
  --max-steps N               most steps accepted (default ${DEFAULT_LIMITS.maxSteps})
  --max-images N              most images per job (default ${DEFAULT_LIMITS.maxImages})
  --preview-every N           a preview image every N steps in event streams (default 5; 0 = none)
  --body-limit BYTES          largest request body (default 16 MiB: room for base64 PNG images)
  --text-quantization Q       none (default), int8 or int4, as sana generate
  --transformer-quantization Q  none (default) or int8, as sana generate
  --vae-tiling                tiled VAE decode, as sana generate
  --vae-tile-size N           tile size in px (implies --vae-tiling)
  --vae-tile-stride S         tile stride in px
  --lora FILE[:SCALE]         a LoRA for the transformers (repeatable), as sana generate
  --lora-fuse                 fuse the LoRAs into the weights at load
  --threads N                 CPU threads (default: all cores)
  ${DEVICE_HELP.replace('D                 ', 'D                  ')}
  ${PRECISION_HELP}
  --queue redis://HOST:PORT   put jobs on a Redis queue for \`sana worker\` processes (default: run them here)
  --log                       log each request (JSON lines on stdout)
  -h, --help                  show this help
`;

function nonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag}: expected an integer >= 0, got "${v}"`);
  return n;
}

export async function serveCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', multiple: true },
      host: { type: 'string' },
      port: { type: 'string' },
      'api-key': { type: 'string' },
      cors: { type: 'string' },
      'queue-size': { type: 'string' },
      'keep-jobs': { type: 'string' },
      'keep-minutes': { type: 'string' },
      'output-dir': { type: 'string' },
      'max-size': { type: 'string' },
      'max-steps': { type: 'string' },
      'max-images': { type: 'string' },
      'preview-every': { type: 'string' },
      'body-limit': { type: 'string' },
      ...MODEL_LOAD_FLAGS,
      log: { type: 'boolean' },
      queue: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    process.stdout.write(SERVE_HELP);
    return;
  }
  const int = (flag: keyof typeof v) => (v[flag] === undefined ? undefined : parsePositiveInt(String(v[flag]), `--${flag}`));
  const port = v.port === undefined ? undefined : nonNegativeInt(v.port, '--port');
  if (port !== undefined && port > 65535) throw new UsageError(`--port: expected 0..65535, got ${port}`);
  // the server's limits may not exceed the library's own (src/limits.ts)
  const bounded = (flag: 'max-size' | 'max-steps' | 'max-images', limit: Limit, min = 1) =>
    v[flag] === undefined ? undefined : parseBounded(v[flag], `--${flag}`, limit, min);
  const limits = { maxSize: bounded('max-size', LIMITS.size, MIN_SIZE), maxSteps: bounded('max-steps', LIMITS.steps), maxImages: bounded('max-images', LIMITS.images) };
  const apiKey = v['api-key'] ?? (process.env.SANA_API_KEY || undefined);
  if (v.queue !== undefined) parseRedisUrl(v.queue); // a malformed URL is refused before the models load

  const load = await modelLoadFromFlags(v);
  process.stderr.write('loading models...\n');
  const server = await startSanaServer({
    models: (v.model ?? []).map(parseModelSpec),
    host: v.host,
    port,
    apiKey,
    cors: v.cors,
    queueSize: int('queue-size'),
    keepJobs: int('keep-jobs'),
    keepMinutes: int('keep-minutes'),
    outputDir: v['output-dir'],
    limits,
    previewEvery: v['preview-every'] === undefined ? undefined : nonNegativeInt(v['preview-every'], '--preview-every'),
    bodyLimit: int('body-limit'),
    load,
    log: Boolean(v.log),
    queue: v.queue,
  });
  const names = server.models.map((m) => `${m.id} (${m.name}, ${m.width}x${m.height})`).join(', ');
  const where = v.queue ? `  queue: ${displayRedisUrl(v.queue)}` : '';
  process.stderr.write(`sana serve: ${server.url}  models: ${names}${where}${apiKey ? '  (API key required)' : ''}\n`);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`${signal}: stopping (cancelling queued jobs, finishing the current step)...\n`);
      server.close().then(resolve, (e: unknown) => {
        process.stderr.write(`error while stopping: ${(e as Error).message}\n`);
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  process.stderr.write('stopped\n');
}
