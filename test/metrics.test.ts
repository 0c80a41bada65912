// GET /metrics in Prometheus' text format (https://prometheus.io/docs/instrumenting/exposition_formats/): the
// formatter against hand-written lines of that format (label values escaped), and the in-process server's counts
// after jobs that end done and cancelled; and the Idempotency-Key in-process (one job for two submissions).
// ref: docs/server.md "GET /metrics"

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { formatMetrics } from '../src/server/routes/metrics.js';
import { SanaServer, startSanaServer } from '../src/server/server.js';
import { api, waitForJob } from './helpers/server-client.js';

test('formatMetrics writes HELP, TYPE and escaped label values', () => {
  const now = 1_000_000;
  const text = formatMetrics(
    [
      [
        'm1',
        {
          running: 1,
          queued: 3,
          capacity: 16,
          finished: { done: 7, failed: 1, cancelled: 2 },
          workers: [{ id: 'box "a"\\1', completed: 5, failed: 1, cancelled: 0, busySeconds: 2.5, startedAt: now - 10_000, lastSeen: now - 500 }],
        },
      ],
    ],
    now,
  );
  const lines = text.split('\n');
  assert.equal(text.at(-1), '\n', 'ends with a newline');
  for (const l of [
    '# TYPE sana_queue_depth gauge',
    'sana_queue_depth{model="m1"} 3',
    'sana_queue_capacity{model="m1"} 16',
    'sana_jobs{model="m1",state="queued"} 3',
    'sana_jobs{model="m1",state="running"} 1',
    '# TYPE sana_jobs_finished_total counter',
    'sana_jobs_finished_total{model="m1",status="done"} 7',
    'sana_jobs_finished_total{model="m1",status="failed"} 1',
    'sana_jobs_finished_total{model="m1",status="cancelled"} 2',
    'sana_worker_jobs_total{model="m1",worker="box \\"a\\"\\\\1",status="done"} 5',
    'sana_worker_busy_seconds_total{model="m1",worker="box \\"a\\"\\\\1"} 2.500000',
    'sana_worker_uptime_seconds{model="m1",worker="box \\"a\\"\\\\1"} 10',
    'sana_worker_jobs_per_second{model="m1",worker="box \\"a\\"\\\\1"} 0.500000',
    'sana_worker_last_seen_seconds{model="m1",worker="box \\"a\\"\\\\1"} 0.500000',
  ]) {
    assert.ok(lines.includes(l), `missing: ${l}`);
  }
  // every sample's family was declared before it
  const declared = new Set<string>();
  for (const l of lines.filter(Boolean)) {
    const m = l.match(/^# TYPE (\S+) (gauge|counter)$/);
    if (m) declared.add(m[1]);
    else if (!l.startsWith('# HELP ')) assert.ok(declared.has(l.slice(0, l.indexOf('{'))), `undeclared: ${l}`);
  }
});

describe('GET /metrics and Idempotency-Key in-process', () => {
  let server: SanaServer;
  let base: string;
  before(async () => {
    server = await startSanaServer({ port: 0, queueSize: 4, previewEvery: 0 });
    base = server.url;
  });
  after(() => server.close());

  test('counts of done and cancelled jobs, the in-process worker, and one job per idempotency key', async () => {
    const key = { 'Idempotency-Key': 'order-17' };
    const a = await api(base, 'POST', '/api/generate', { prompt: 'a red circle', steps: 2, seed: 5 }, key);
    const b = await api(base, 'POST', '/api/generate', { prompt: 'a red circle', steps: 2, seed: 5 }, key);
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.equal(b.body.id, a.body.id, 'the same key names the same job');
    assert.equal(b.headers.get('idempotent-replayed'), 'true');
    assert.equal(a.headers.get('idempotent-replayed'), null);
    const other = await api(base, 'POST', '/api/generate', { prompt: 'a red circle', steps: 2, seed: 5 }, { 'Idempotency-Key': 'order-18' });
    assert.notEqual(other.body.id, a.body.id);
    // a long job, then one behind it that is cancelled while it waits
    const long = await api(base, 'POST', '/api/generate', { prompt: 'a red circle', steps: 100, preview: false });
    const waiting = await api(base, 'POST', '/api/generate', { prompt: 'a red circle', steps: 2 });
    assert.equal((await api(base, 'DELETE', `/api/jobs/${waiting.body.id}`)).body.status, 'cancelled');
    assert.equal((await waitForJob(base, a.body.id)).status, 'done');
    assert.equal((await waitForJob(base, other.body.id)).status, 'done');
    assert.equal((await api(base, 'DELETE', `/api/jobs/${long.body.id}`)).body.status, 'cancelled');

    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const lines = (await res.text()).split('\n');
    for (const l of [
      'sana_queue_depth{model="default"} 0',
      'sana_queue_capacity{model="default"} 4',
      'sana_jobs{model="default",state="running"} 0',
      'sana_jobs_finished_total{model="default",status="done"} 2',
      'sana_jobs_finished_total{model="default",status="cancelled"} 2',
      'sana_jobs_finished_total{model="default",status="failed"} 0',
      'sana_worker_jobs_total{model="default",worker="in-process",status="done"} 2',
      'sana_worker_jobs_total{model="default",worker="in-process",status="cancelled"} 1',
    ]) {
      assert.ok(lines.includes(l), `missing: ${l}`);
    }
    const busy = lines.find((l) => l.startsWith('sana_worker_busy_seconds_total{model="default",worker="in-process"} '))!;
    assert.ok(Number(busy.split(' ')[1]) > 0, busy);
  });
});
