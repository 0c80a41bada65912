// A job's server-sent event stream: first where the job stands (so a late watcher misses nothing that matters),
// then each event as it happens, ending after the last one. ref: docs/server.md "GET /api/jobs/:id/events"

import type { FastifyReply, FastifyRequest } from 'fastify';
import { ServerContext } from '../context.js';
import { Job, JobEvent } from '../job.js';

/** Comment lines keep proxies and browsers from closing a quiet stream (a long queue wait). */
const HEARTBEAT_MS = 15_000;
const TERMINAL_EVENTS = new Set(['done', 'error', 'cancelled']);

export async function followJobEvents(ctx: ServerContext, job: Job, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  // A Redis queue answers the position over the network; the rest of the replay is read after that wait, from the
  // job as it is then, and the stream subscribes in the same tick, so no event falls between the two.
  const position = job.status === 'queued' ? await ctx.models.get(job.modelId)!.queue.position(job) : null;
  const replayed = replay(job, position);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>), // CORS headers set by the hooks before the hijack
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  const send = (e: JobEvent) => res.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
  let unsubscribe = () => {};
  let heartbeat: NodeJS.Timeout | undefined;
  const end = () => {
    unsubscribe();
    clearInterval(heartbeat);
    ctx.streams.delete(res);
    if (!res.writableEnded) res.end();
  };

  for (const e of replayed) send(e);
  if (job.finished) {
    end();
    return;
  }
  ctx.streams.add(res);
  unsubscribe = job.subscribe((e) => {
    send(e);
    if (TERMINAL_EVENTS.has(e.event)) end();
  });
  heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  res.on('close', end);
}

function replay(job: Job, position: number | null): JobEvent[] {
  switch (job.status) {
    case 'queued':
      return [{ event: 'queued', data: { position } }];
    case 'running': {
      const events: JobEvent[] = [{ event: 'started', data: job.startDetail }];
      if (job.stage) events.push({ event: 'stage', data: { stage: job.stage } });
      if (job.step > 0) events.push({ event: 'step', data: { step: job.step, total: job.request.steps, seconds: 0 } });
      return events;
    }
    case 'done':
      return [{ event: 'done', data: job.toJSON(null) }];
    case 'failed':
      return [{ event: 'error', data: { message: job.error } }];
    case 'cancelled':
      return [{ event: 'cancelled', data: {} }];
  }
}
