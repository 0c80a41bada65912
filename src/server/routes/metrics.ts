// GET /metrics: each model's queue depth, its jobs by state, and what each worker has done, in Prometheus' text
// exposition format (version 0.0.4), the same in-process and on Redis. Throughput is a counter, as Prometheus
// wants: rate(sana_worker_jobs_total{status="done"}[1m]) is a worker's jobs per second; the lifetime average is
// also given as a gauge for a quick look without a Prometheus server.
// ref: docs/server.md "GET /metrics", https://prometheus.io/docs/instrumenting/exposition_formats/

import type { FastifyInstance } from 'fastify';
import { ServerContext } from '../context.js';
import { QueueMetrics } from '../job-queue.js';

/** A label value with backslash, double quote and newline escaped, as the format requires. */
const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: Array<[Record<string, string>, number]>;
}

export function formatMetrics(byModel: ReadonlyArray<[string, QueueMetrics]>, now = Date.now()): string {
  const family = (name: string, type: Family['type'], help: string): Family => ({ name, type, help, samples: [] });
  const depth = family('sana_queue_depth', 'gauge', 'Jobs waiting in the model queue.');
  const capacity = family('sana_queue_capacity', 'gauge', 'Jobs the model queue takes before answering 429.');
  const jobs = family('sana_jobs', 'gauge', 'Jobs of the model now queued or running.');
  const finished = family('sana_jobs_finished_total', 'counter', 'Jobs of the model that ended, by status.');
  const workerJobs = family('sana_worker_jobs_total', 'counter', 'Jobs each worker ended, by status.');
  const busy = family('sana_worker_busy_seconds_total', 'counter', 'Seconds each worker spent running jobs.');
  const uptime = family('sana_worker_uptime_seconds', 'gauge', 'Seconds since the worker started.');
  const average = family('sana_worker_jobs_per_second', 'gauge', 'Jobs done per second of uptime, averaged over the worker lifetime.');
  const seen = family('sana_worker_last_seen_seconds', 'gauge', 'Seconds since the worker last reported (over 15: presumed gone).');
  for (const [model, m] of byModel) {
    depth.samples.push([{ model }, m.queued]);
    capacity.samples.push([{ model }, m.capacity]);
    jobs.samples.push([{ model, state: 'queued' }, m.queued], [{ model, state: 'running' }, m.running]);
    for (const status of ['done', 'failed', 'cancelled'] as const) finished.samples.push([{ model, status }, m.finished[status]]);
    for (const w of m.workers) {
      const l = { model, worker: w.id };
      workerJobs.samples.push([{ ...l, status: 'done' }, w.completed], [{ ...l, status: 'failed' }, w.failed], [{ ...l, status: 'cancelled' }, w.cancelled]);
      busy.samples.push([l, w.busySeconds]);
      const up = Math.max(0, (now - w.startedAt) / 1000);
      uptime.samples.push([l, up]);
      average.samples.push([l, up > 0 ? w.completed / up : 0]);
      seen.samples.push([l, Math.max(0, (now - w.lastSeen) / 1000)]);
    }
  }
  const lines: string[] = [];
  for (const f of [depth, capacity, jobs, finished, workerJobs, busy, uptime, average, seen]) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const [labels, value] of f.samples) {
      const text = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`).join(',');
      lines.push(`${f.name}{${text}} ${Number.isInteger(value) ? value : value.toFixed(6)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function registerMetricsRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/metrics', async (_request, reply) => {
    const byModel = await Promise.all([...ctx.models.values()].map(async (m) => [m.id, await m.queue.metrics()] as [string, QueueMetrics]));
    return reply.type('text/plain; version=0.0.4; charset=utf-8').header('Cache-Control', 'no-store').send(formatMetrics(byModel));
  });
}
