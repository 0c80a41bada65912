// Small HTTP helpers for the server tests: JSON calls over a real socket and a server-sent events reader.

export interface ApiAnswer<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function api<T = any>(
  base: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + route, init);
  const type = res.headers.get('content-type') ?? '';
  const parsed = type.includes('json') ? await res.json() : Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body: parsed as T };
}

export interface SseEvent {
  event: string;
  data: any;
}

/**
 * Reads a job's event stream until the server ends it; `onEvent` sees each event as it arrives (and may act on
 * it, e.g. cancel the job).
 */
export async function readEvents(
  url: string,
  headers: Record<string, string> = {},
  onEvent: (e: SseEvent) => void | Promise<void> = () => {},
): Promise<SseEvent[]> {
  const res = await fetch(url, { headers });
  if (res.status !== 200) throw new Error(`event stream ${url}: HTTP ${res.status} ${await res.text()}`);
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) throw new Error(`event stream ${url}: content-type ${res.headers.get('content-type')}`);
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (!data.length) continue; // a heartbeat comment
      const e = { event, data: JSON.parse(data.join('\n')) };
      events.push(e);
      await onEvent(e);
    }
  }
  return events;
}

/** Polls a job until it has finished. */
export async function waitForJob(base: string, id: string, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<any> {
  const t0 = Date.now();
  for (;;) {
    const r = await api(base, 'GET', `/api/jobs/${id}`, undefined, headers);
    if (r.status !== 200) throw new Error(`job ${id}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    if (['done', 'failed', 'cancelled'].includes(r.body.status)) return r.body;
    if (Date.now() - t0 > timeoutMs) throw new Error(`job ${id} still ${r.body.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
