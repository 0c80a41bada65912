// Scale-out on a real redis-server: `sana serve --queue` and three `sana worker` processes on the bundled default
// model. 30 jobs each give the image the library gives in-process for their seed; a worker SIGKILLed mid-job leaves
// its job to another; a Redis restart with jobs waiting loses none; a running job is cancelled on its worker; a
// waiting one is removed; bad input fails once, not retried; one idempotency key makes one job; /metrics counts per
// worker; no job is completed twice. ref: docs/server.md "Scale-out", issue #19

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { decodePng } from '../src/io/png.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { toRgbImages } from '../src/pipeline/postprocess.js';
import { SanaPipeline } from '../src/pipeline/sana-pipeline.js';
import { RedisProcess, startRedis } from './helpers/redis-server.js';
import { SanaProcess, cli, startSana } from './helpers/sana-processes.js';
import { api, readEvents, waitForJob } from './helpers/server-client.js';

const PROMPT = 'a red circle left of a blue square on a yellow background';
const STEPS = 10;
const SEEDS = Array.from({ length: 30 }, (_, i) => 1000 + 7 * i);
/** Short locks, so a killed worker's job is retried within seconds (production default: 30 s). */
const STALL_SECONDS = '3';

describe('Redis queue: sana serve --queue and sana worker processes', () => {
  let redis: RedisProcess;
  let server: SanaProcess;
  let base: string;
  const workers = new Map<string, SanaProcess>();
  let pipeline: SanaPipeline;
  const expected = new Map<string, Buffer>(); // "seed/steps" -> RGB bytes of the library's image
  const allLogs: string[] = []; // logs of workers that were stopped or killed
  const apiOut = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-queue-api-out-'));
  const workerOut = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-queue-worker-out-')); // shared by the workers

  const startWorker = async (name: string) => {
    const w = await startSana(
      ['worker', '--queue', redis.url, '--name', name, '--threads', '1', '--stall-seconds', STALL_SECONDS, '--output-dir', workerOut],
      /sana worker (\S+): taking jobs/,
    );
    workers.set(name, w);
    return w;
  };
  const submit = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const r = await api(base, 'POST', '/api/generate', { prompt: PROMPT, preview: false, ...body }, headers);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r;
  };
  /** The library's image for a seed: the in-process path, single-threaded like the workers. */
  const reference = async (seed: number, steps: number) => {
    const key = `${seed}/${steps}`;
    if (!expected.has(key)) {
      const [img] = toRgbImages((await pipeline.run({ prompts: [PROMPT], seed, steps })).images);
      expected.set(key, Buffer.from(img.rgb));
    }
    return expected.get(key)!;
  };
  const checkImage = async (id: string, seed: number, steps: number) => {
    const png = await api(base, 'GET', `/api/jobs/${id}/images/0`);
    assert.equal(png.status, 200, `job ${id}`);
    const rgb = Buffer.from(decodePng(png.body).rgb);
    assert.ok(rgb.equals(await reference(seed, steps)), `job ${id}: its image is not the library's for seed ${seed}`);
  };
  const doneLines = (): string[] => [...allLogs, ...[...workers.values()].map((w) => w.log())].join('\n').match(/^done \S+/gm) ?? [];
  const metrics = async () => (await (await fetch(`${base}/metrics`)).text()).split('\n');
  const sample = (lines: string[], prefix: string) => {
    const line = lines.find((l) => l.startsWith(prefix));
    assert.ok(line, `no ${prefix} in /metrics`);
    return Number(line.slice(prefix.length).trim());
  };

  before(async () => {
    redis = await startRedis();
    server = await startSana(['serve', '--port', '0', '--queue', redis.url, '--queue-size', '64', '--output-dir', apiOut], /sana serve: (http:\/\/127\.0\.0\.1:\d+)/);
    base = server.ready[1];
    await Promise.all(['w1', 'w2', 'w3'].map(startWorker));
    ({ pipeline } = await loadSanaPipeline(undefined, { threads: 1, keepResident: true }));
  });

  after(async () => {
    await server?.stop();
    await Promise.all([...workers.values()].map((w) => w.stop('SIGKILL')));
    await pipeline?.release();
    await redis?.stop();
    for (const dir of [apiOut, workerOut]) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an unreachable Redis is refused with its URL named, by serve and worker alike', async () => {
    const commands = [['serve', '--port', '0'], ['worker']];
    const answers = await Promise.all(commands.map((args) => runCli([...args, '--queue', 'redis://127.0.0.1:1'])));
    for (const [i, r] of answers.entries()) {
      const command = commands[i][0];
      assert.equal(r.status, 2, `${command}: ${r.stderr}`);
      assert.match(r.stderr, /--queue redis:\/\/127\.0\.0\.1:1: Redis is not reachable \(connect ECONNREFUSED/, command);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const [bad, missing, ...noModel] = await Promise.all([
      runCli(['worker', '--queue', 'http://127.0.0.1:6379']),
      runCli(['worker']),
      // Redis reached, then a model that cannot load: the error, and an exit (no open connection keeps it alive)
      ...[['serve', '--port', '0'], ['worker']].map((args) => runCli([...args, '--queue', redis.url, '--model', '/nonexistent/model'])),
    ]);
    for (const r of noModel) {
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /\/nonexistent\/model/);
    }
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--queue: expected a redis:\/\/ or rediss:\/\/ URL, got "http:\/\/127\.0\.0\.1:6379"/);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /--queue redis:\/\/HOST:PORT is required/);
  });

  test('30 jobs on 3 workers: each image is the in-process image of its seed', async () => {
    const ids = [];
    for (const seed of SEEDS) ids.push((await submit({ seed, steps: STEPS })).body.id as string);
    const jobs = await waitForAll(base, ids);
    for (const [i, job] of jobs.entries()) {
      assert.equal(job.status, 'done', `job ${job.id}: ${job.error}`);
      assert.equal(job.parameters.seed, String(SEEDS[i]));
      assert.ok(job.timings.totalSeconds > 0);
      await checkImage(job.id, SEEDS[i], STEPS);
    }
    assert.notDeepEqual(expected.get(`${SEEDS[0]}/${STEPS}`), expected.get(`${SEEDS[1]}/${STEPS}`), 'seeds give different images');
    // the work was shared: /metrics counts each worker's jobs, and they add up
    const m = await metrics();
    const perWorker = ['w1', 'w2', 'w3'].map((w) => sample(m, `sana_worker_jobs_total{model="default",worker="${w}",status="done"}`));
    assert.equal(perWorker.reduce((a, b) => a + b, 0), 30, `per worker: ${perWorker}`);
    assert.ok(perWorker.filter((n) => n > 0).length >= 2, `at least two workers took jobs: ${perWorker}`);
    assert.equal(sample(m, 'sana_jobs_finished_total{model="default",status="done"}'), 30);
    assert.equal(sample(m, 'sana_queue_depth{model="default"}'), 0);
    assert.ok(m.includes('# TYPE sana_worker_jobs_total counter'));
  });

  test('one Idempotency-Key, two submissions: one job', async () => {
    const headers = { 'Idempotency-Key': 'client-42-attempt' };
    const [a, b] = await Promise.all([submit({ seed: SEEDS[2], steps: STEPS }, headers), submit({ seed: SEEDS[2], steps: STEPS }, headers)]);
    assert.equal(a.body.id, b.body.id);
    const job = await waitForJob(base, a.body.id);
    assert.equal(job.status, 'done');
    await checkImage(job.id, SEEDS[2], STEPS);
    // the same PNG file in the API server's and the workers' --output-dir
    const served = (await api(base, 'GET', `/api/jobs/${job.id}/images/0`)).body as Buffer;
    for (const dir of [apiOut, workerOut]) assert.ok(fs.readFileSync(path.join(dir, `${job.id}-0.png`)).equals(served), dir);
    const again = await submit({ seed: SEEDS[2], steps: STEPS }, headers);
    assert.equal(again.body.id, a.body.id);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(doneLines().filter((l) => l === `done ${a.body.id}`).length, 1, 'run once');
    const bad = await api(base, 'POST', '/api/generate', { prompt: PROMPT }, { 'Idempotency-Key': 'x'.repeat(256) });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /Idempotency-Key must be one value of 1-255 visible ASCII characters/);
  });

  test('a worker SIGKILLed mid-job: the job is retried on another worker and finishes', async () => {
    const seed = SEEDS[5];
    const { id } = (await submit({ seed, steps: 100 })).body;
    let killed: string | undefined;
    const events = await readEvents(`${base}/api/jobs/${id}/events`, {}, (e) => {
      if (e.event === 'step' && e.data.step === 3 && !killed) {
        const name = [...workers.entries()].find(([, w]) => w.log().includes(`started ${id} `))?.[0];
        assert.ok(name, 'the worker running the job logged its start');
        killed = name;
        const w = workers.get(name)!;
        allLogs.push(w.log());
        workers.delete(name);
        w.child.kill('SIGKILL');
      }
    });
    assert.ok(killed, 'a worker was killed mid-job');
    const started = events.filter((e) => e.event === 'started').map((e) => e.data.worker);
    assert.equal(events.at(-1)!.event, 'done', JSON.stringify(events.at(-1)));
    assert.ok(started.length >= 2 && started[0] === killed && started.at(-1) !== killed, `started on ${started}`);
    assert.equal(events.filter((e) => e.event === 'started' && e.data.worker === killed).length, 1, 'each start announced once');
    await checkImage(id, seed, 100);
    assert.doesNotMatch(allLogs.at(-1)!, new RegExp(`^done ${id}`, 'm'), 'the killed worker did not complete it');
  });

  test('Redis restarts while jobs wait: none is lost', async () => {
    const seeds = SEEDS.slice(10, 22);
    const ids: string[] = [];
    for (const seed of seeds) ids.push((await submit({ seed, steps: STEPS })).body.id);
    const waiting = (await api(base, 'GET', '/api/models')).body.models[0].queue.queued;
    assert.ok(waiting >= 3, `jobs were waiting when Redis went down (${waiting})`);
    await redis.restart();
    const jobs = await waitForAll(base, ids);
    for (const [i, job] of jobs.entries()) {
      assert.equal(job.status, 'done', `job ${job.id}: ${job.error}`);
      await checkImage(job.id, seeds[i], STEPS);
    }
  });

  test('cancel: a job running on a worker stops at its next step; a waiting one is removed', async () => {
    const running = (await submit({ seed: 1, steps: 100 })).body.id as string;
    let answer: Promise<any> | undefined;
    const events = await readEvents(`${base}/api/jobs/${running}/events`, {}, (e) => {
      if (e.event === 'step' && e.data.step === 2 && !answer) answer = api(base, 'DELETE', `/api/jobs/${running}`);
    });
    const cancelled = await answer!;
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'cancelled');
    assert.equal(events.at(-1)!.event, 'cancelled');
    assert.ok(events.filter((e) => e.event === 'step').length < 100, 'stopped before its last step');
    const worker = events.find((e) => e.event === 'started')!.data.worker as string;
    await waitFor(() => workers.get(worker)!.log().includes(`cancelled ${running}`), `worker ${worker} reports cancelled ${running}`);
    assert.equal((await api(base, 'DELETE', `/api/jobs/${running}`)).status, 409);

    // every worker busy with a long job, so the last one waits; cancelling it removes it from Redis at once
    const busy = [];
    for (let i = 0; i < workers.size; i++) busy.push((await submit({ seed: 2 + i, steps: 100 })).body.id as string);
    const last = (await submit({ seed: 9, steps: STEPS })).body.id as string;
    assert.equal((await api(base, 'GET', `/api/jobs/${last}`)).body.status, 'queued');
    const removed = await api(base, 'DELETE', `/api/jobs/${last}`);
    assert.equal(removed.body.status, 'cancelled');
    await Promise.all(busy.map((id) => api(base, 'DELETE', `/api/jobs/${id}`)));
    const logs = [...workers.values()].map((w) => w.log()).join('\n');
    assert.doesNotMatch(logs, new RegExp(`started ${last}`), 'the removed job never ran');
    const cancelledCount = async () => sample(await metrics(), 'sana_jobs_finished_total{model="default",status="cancelled"}');
    await waitFor(async () => (await cancelledCount()) === 2 + busy.length, `/metrics counts ${2 + busy.length} cancelled jobs`);
  });

  test('a job with bad input fails once with its reason, not retried', async () => {
    const queue = new Queue('default', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'sana' });
    try {
      const payload = { version: 1, request: { prompts: [PROMPT], steps: 0, seed: '1' }, sampler: 'dpm', preview: false, previewEvery: 0 };
      const job = await queue.add('generate', payload, { jobId: 'j_bad_input_test', attempts: 3 });
      await waitFor(async () => (await job.getState()) === 'failed', 'the bad job failed');
      const failed = (await queue.getJob(job.id!))!;
      assert.match(failed.failedReason, /steps must be a positive integer, got 0/);
      assert.equal(failed.attemptsMade, 1, 'not retried');
    } finally {
      await queue.close();
    }
    const logged = () => /^failed j_bad_input_test .*steps must be a positive integer/m.test([...workers.values()].map((w) => w.log()).join('\n'));
    await waitFor(logged, 'a worker logs the failure');
    assert.doesNotMatch([...workers.values()].map((w) => w.log()).join('\n'), /retrying j_bad_input_test/);
  });

  test('SIGTERM: workers and the API server exit 0, leaving Redis to the next ones', async () => {
    for (const w of workers.values()) {
      assert.equal(await w.stop('SIGTERM'), 0, w.log());
      assert.match(w.log(), /stopped\n$/);
    }
    assert.equal(await server.stop('SIGTERM'), 0, server.log());
  });

  test('no job was completed twice', () => {
    const lines = doneLines();
    assert.ok(lines.length >= 30 + 1 + 1 + 12, `${lines.length} completions logged`);
    assert.equal(new Set(lines).size, lines.length, `a job completed twice: ${lines.filter((l, i) => lines.indexOf(l) !== i)}`);
  });
});

/** The CLI's exit status and stderr (asynchronously, so several run at once). */
function runCli(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SANA_API_KEY: '' } });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000); // a hang fails the test (status null) instead of stalling it
    child.on('exit', () => clearTimeout(timer));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (status) => resolve({ status, stderr }));
  });
}

/** One poller at a time (30 at once would load the 2-core machine more than the jobs do). */
async function waitForAll(base: string, ids: readonly string[]): Promise<any[]> {
  const jobs = [];
  for (const id of ids) jobs.push(await waitForJob(base, id, {}, 90_000));
  return jobs;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
