// The bounded load test (bench/server-load.ts) on loopback: 60 requests from 12 concurrent clients against a server
// with a queue of 6: every accepted job ends with the library's image for its prompt and seed, cancelled ones end
// cancelled, invalid ones get a 400 naming the field, turned-away ones a 429 with Retry-After; nothing is lost or
// mixed up. Prints the throughput, latency percentiles and the server's peak RSS.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoadTestOptions, formatReport, runServerLoadTest } from '../bench/server-load.js';

test('60 requests from 12 clients: every job ends with the right image, every refusal is clear', async () => {
  const o: LoadTestOptions = { requests: 60, clients: 12, steps: 8, queueSize: 6 };
  const report = await runServerLoadTest(o);
  process.stdout.write(`${formatReport(report, o)}\n`);
  const { records } = report;
  assert.deepEqual(
    records.map((r) => r.index),
    Array.from({ length: 60 }, (_, i) => i),
    'every request has exactly one final record',
  );
  assert.deepEqual(records.filter((r) => r.outcome === 'wrong').map((r) => `${r.index}: ${r.problem}`), []);
  const by = (kind: string) => records.filter((r) => r.kind === kind);
  assert.equal(by('invalid').length, 12);
  assert.ok(by('invalid').every((r) => r.outcome === 'invalid' && r.status === 400));
  assert.ok(by('cancel').every((r) => r.outcome === 'cancelled' || r.outcome === 'rejected-429'));
  const finished = records.filter((r) => r.kind === 'native' || r.kind === 'openai');
  assert.ok(finished.every((r) => r.outcome === 'done' || r.outcome === 'rejected-429'));
  assert.ok(records.filter((r) => r.outcome === 'done').length >= 30, 'most valid requests get through');
  assert.ok(report.rejections.length > 0, 'the small queue turned some attempts away');
  assert.ok(report.rejections.every((r) => r.retryAfter! >= 1));
  const ids = records.filter((r) => r.jobId).map((r) => r.jobId);
  assert.equal(new Set(ids).size, ids.length, 'job ids are unique');
});
