// A bounded load test of `sana serve` on loopback: C concurrent clients send R requests in all (native jobs followed
// by their event stream, OpenAI calls, some cancelled mid-run, some invalid) to a server in its own process with a
// small queue, so some are turned away with 429. Checks that every accepted job ends, with the image the library
// makes for its prompt and seed, and that every rejected request got a clear status; prints throughput, latency
// percentiles and the server's peak RSS. The test (test/server-load.test.ts) asserts on the same report.
//
//   node dist/bench/server-load.js [--requests 60] [--clients 12] [--steps 8] [--queue-size 6]

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodePng, readTextChunks } from '../src/io/png.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { toRgbImages } from '../src/pipeline/postprocess.js';
import { api, readEvents } from '../test/helpers/server-client.js';

export interface LoadTestOptions {
  requests: number;
  clients: number;
  steps: number;
  queueSize: number;
}

export type Outcome = 'done' | 'cancelled' | 'invalid' | 'rejected-429' | 'wrong';

export interface RequestRecord {
  index: number;
  kind: 'native' | 'openai' | 'cancel' | 'invalid';
  outcome: Outcome;
  status: number;
  /** Why a request counts as wrong (a mixed-up image, a missing status, an unclear error). */
  problem?: string;
  latencySeconds?: number;
  jobId?: string;
  /** Seconds a 429 asked to wait. */
  retryAfter?: number;
}

export interface LoadTestReport {
  /** The final outcome of each request. */
  records: RequestRecord[];
  /** Attempts turned away with 429 before a request's final outcome. */
  rejections: RequestRecord[];
  wallSeconds: number;
  imagesPerSecond: number;
  latency: { p50: number; p90: number; p99: number; max: number };
  serverPeakRssBytes: number;
}

const PROMPTS = ['a red circle left of a blue square', 'two small yellow triangles on a black background', 'a big green diamond'];
const SEEDS = [1, 2, 3, 4];
const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** OpenAI requests have no step count: they run the default. */
const OPENAI_STEPS = 20;

/** The library's image for each prompt x seed x step count: what every accepted job must return. */
async function referenceImages(stepCounts: readonly number[]): Promise<Map<string, Buffer>> {
  const { pipeline } = await loadSanaPipeline(undefined, { keepResident: true });
  const refs = new Map<string, Buffer>();
  for (const steps of new Set(stepCounts)) {
    for (const prompt of PROMPTS) {
      for (const seed of SEEDS) {
        const r = await pipeline.run({ prompts: [prompt], seed, steps });
        refs.set(`${prompt}|${seed}|${steps}`, Buffer.from(toRgbImages(r.images)[0].rgb));
      }
    }
  }
  await pipeline.release();
  return refs;
}

async function startServer(queueSize: number): Promise<{ base: string; peakRss: () => number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--queue-size', String(queueSize), '--preview-every', '4'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const base = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = stderr.match(/sana serve: (http:\/\/[^\s]+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', () => reject(new Error(`sana serve exited: ${stderr}`)));
  });
  const peakRss = () => {
    const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    return Number(status.match(/VmHWM:\s+(\d+) kB/)![1]) * 1024;
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      child.on('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { base, peakRss, stop };
}

function checkImage(png: Buffer, prompt: string, seed: number, steps: number, refs: Map<string, Buffer>): string | undefined {
  const decoded = decodePng(png);
  if (decoded.width !== 256 || decoded.height !== 256) return `image is ${decoded.width}x${decoded.height}`;
  const text = readTextChunks(png);
  if (text.prompt !== prompt || text.seed !== String(seed)) return `image says prompt "${text.prompt}" seed ${text.seed}`;
  if (!Buffer.from(decoded.rgb).equals(refs.get(`${prompt}|${seed}|${steps}`)!)) return 'pixels differ from the library image for this seed';
  return undefined;
}

/** Longest wait a client honours from a Retry-After before trying again. */
const MAX_WAIT_SECONDS = 2;
const MAX_ATTEMPTS = 6;

/** A client as a polite user writes it: on 429 it waits for Retry-After and tries again, a few times. */
async function requestWithRetries(base: string, index: number, o: LoadTestOptions, refs: Map<string, Buffer>, rejections: RequestRecord[]) {
  for (let attempt = 1; ; attempt++) {
    const record = await oneRequest(base, index, o, refs);
    if (record.outcome !== 'rejected-429' || attempt === MAX_ATTEMPTS) return record;
    rejections.push(record);
    await new Promise((resolve) => setTimeout(resolve, 1000 * Math.min(MAX_WAIT_SECONDS, record.retryAfter!)));
  }
}

async function oneRequest(base: string, index: number, o: LoadTestOptions, refs: Map<string, Buffer>): Promise<RequestRecord> {
  const prompt = PROMPTS[index % PROMPTS.length];
  const seed = SEEDS[index % SEEDS.length];
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const slot = index % 10;
  if (slot === 2 || slot === 8) {
    const body = slot === 2 ? { prompt, steps: 0 } : { prompt, colour: 'red' };
    const r = await api(base, 'POST', '/api/generate', body);
    const wanted = slot === 2 ? 'steps' : 'colour';
    const clear = r.status === 400 && r.body.error?.param === wanted && typeof r.body.error.message === 'string';
    return { index, kind: 'invalid', outcome: clear ? 'invalid' : 'wrong', status: r.status, problem: clear ? undefined : JSON.stringify(r.body) };
  }
  if (slot === 0 || slot === 6) {
    const r = await api(base, 'POST', '/v1/images/generations', { prompt, size: '256x256', seed });
    if (r.status === 429) return rejected(index, 'openai', r);
    if (r.status !== 200) return { index, kind: 'openai', outcome: 'wrong', status: r.status, problem: JSON.stringify(r.body) };
    const problem = checkImage(Buffer.from(r.body.data[0].b64_json, 'base64'), prompt, seed, OPENAI_STEPS, refs);
    return { index, kind: 'openai', outcome: problem ? 'wrong' : 'done', status: 200, problem, latencySeconds: elapsed() };
  }
  const cancel = slot === 5;
  const kind = cancel ? 'cancel' : 'native';
  const submit = await api(base, 'POST', '/api/generate', { prompt, seed, steps: cancel ? 40 : o.steps });
  if (submit.status === 429) return rejected(index, kind, submit);
  if (submit.status !== 202) return { index, kind, outcome: 'wrong', status: submit.status, problem: JSON.stringify(submit.body) };
  const id: string = submit.body.id;
  let cancelAnswer: number | undefined;
  const events = await readEvents(`${base}/api/jobs/${id}/events`, {}, async (e) => {
    if (cancel && e.event === 'step' && cancelAnswer === undefined) cancelAnswer = (await api(base, 'DELETE', `/api/jobs/${id}`)).status;
  });
  const last = events.at(-1)?.event;
  if (cancel) {
    // Cancelled at its next step (200), or it had already finished (409): either way a definite end.
    const ok = (cancelAnswer === 200 && last === 'cancelled') || (cancelAnswer === 409 && last === 'done');
    return { index, kind, outcome: ok ? 'cancelled' : 'wrong', status: cancelAnswer ?? 0, jobId: id, problem: ok ? undefined : `cancel ${cancelAnswer}, last event ${last}` };
  }
  if (last !== 'done') return { index, kind, outcome: 'wrong', status: 202, jobId: id, problem: `stream ended with ${last}` };
  const img = await api(base, 'GET', `/api/jobs/${id}/images/0`);
  const problem = img.status === 200 ? checkImage(img.body, prompt, seed, o.steps, refs) : `image: HTTP ${img.status}`;
  return { index, kind, outcome: problem ? 'wrong' : 'done', status: 202, problem, jobId: id, latencySeconds: elapsed() };
}

function rejected(index: number, kind: RequestRecord['kind'], r: { status: number; headers: Headers; body: any }): RequestRecord {
  const retryAfter = Number(r.headers.get('retry-after'));
  const clear = retryAfter >= 1 && r.body.error?.type === 'rate_limit_error' && /queue .* is full/.test(r.body.error.message);
  return { index, kind, outcome: clear ? 'rejected-429' : 'wrong', status: 429, retryAfter, problem: clear ? undefined : 'a 429 without Retry-After or a clear error' };
}

export async function runServerLoadTest(o: LoadTestOptions): Promise<LoadTestReport> {
  const refs = await referenceImages([o.steps, OPENAI_STEPS]);
  const server = await startServer(o.queueSize);
  const records: RequestRecord[] = [];
  const rejections: RequestRecord[] = [];
  const t0 = performance.now();
  let peak = 0;
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: o.clients }, async () => {
        while (next < o.requests) records.push(await requestWithRetries(server.base, next++, o, refs, rejections));
      }),
    );
  } finally {
    peak = server.peakRss();
    await server.stop();
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const latencies = records.filter((r) => r.latencySeconds !== undefined).map((r) => r.latencySeconds!).sort((a, b) => a - b);
  return {
    records: records.sort((a, b) => a.index - b.index),
    rejections,
    wallSeconds,
    imagesPerSecond: records.filter((r) => r.outcome === 'done').length / wallSeconds,
    latency: { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: latencies.at(-1) ?? NaN },
    serverPeakRssBytes: peak,
  };
}

export function formatReport(r: LoadTestReport, o: LoadTestOptions): string {
  const count = (outcome: Outcome) => r.records.filter((x) => x.outcome === outcome).length;
  return [
    `${o.requests} requests from ${o.clients} clients (${o.steps} steps, 256 px, queue size ${o.queueSize}) in ${r.wallSeconds.toFixed(1)} s`,
    `  done ${count('done')}, cancelled ${count('cancelled')}, invalid (400) ${count('invalid')}, still turned away after ${MAX_ATTEMPTS} tries (429) ${count('rejected-429')}, wrong ${count('wrong')}; ${r.rejections.length} attempts got 429 + Retry-After and came back`,
    `  throughput ${r.imagesPerSecond.toFixed(2)} images/s; latency of finished jobs p50 ${r.latency.p50.toFixed(2)} s, p90 ${r.latency.p90.toFixed(2)} s, p99 ${r.latency.p99.toFixed(2)} s, max ${r.latency.max.toFixed(2)} s`,
    `  server peak RSS ${(r.serverPeakRssBytes / 2 ** 20).toFixed(0)} MiB`,
    ...r.records.filter((x) => x.problem).map((x) => `  request ${x.index} (${x.kind}): ${x.problem}`),
  ].join('\n');
}

const invokedDirectly = process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) {
  const { values } = parseArgs({
    options: { requests: { type: 'string' }, clients: { type: 'string' }, steps: { type: 'string' }, 'queue-size': { type: 'string' } },
  });
  const o: LoadTestOptions = {
    requests: Number(values.requests ?? 60),
    clients: Number(values.clients ?? 12),
    steps: Number(values.steps ?? 8),
    queueSize: Number(values['queue-size'] ?? 6),
  };
  const report = await runServerLoadTest(o);
  process.stdout.write(`${formatReport(report, o)}\n`);
}
