// Where the Redis-backed queue lives: the `--queue redis://HOST:PORT[/DB]` URL turned into connection options, a
// check at start-up that Redis answers (a clear one-line error instead of a process that waits forever), and the
// names of every key and channel the API servers and the workers share. ref: docs/server.md "Scale-out"

import { Redis } from 'ioredis';
import { UsageError } from '../cli/errors.js';

/** BullMQ's key prefix: a model's queue is `sana:<model id>:*` (wait, active, the job hashes...). */
export const BULL_PREFIX = 'sana';
/** Most starts of one job: the first, and retries after an unexpected error or a worker that died under it. */
export const JOB_ATTEMPTS = 3;

/** Our own keys and channels, apart from BullMQ's, so neither can shadow the other's. */
const OURS = 'sana-ts';

export const redisKeys = {
  /** Pub/sub: a model's live job events (started, stage, step with previews, finished), JSON {id, event, data}. */
  events: (model: string) => `${OURS}:${model}:events`,
  /** Pub/sub: job ids whose cancellation was asked for; the worker running one stops at its next step. */
  cancelChannel: (model: string) => `${OURS}:${model}:cancel`,
  /** Set when a running job's cancellation is asked for, so a worker that picks it up later (a retry) sees it too. */
  cancelFlag: (model: string, id: string) => `${OURS}:${model}:cancel:${id}`,
  /** A finished job's image k: the PNG file, settings in its text chunks, kept for the result TTL. */
  image: (model: string, id: string, k: number) => `${OURS}:${model}:image:${id}:${k}`,
  /** Hash: jobs ended since the database began, by status (done, failed, cancelled). */
  finished: (model: string) => `${OURS}:${model}:finished`,
  /** Set of worker ids that served the model; each has a hash of its counts. */
  workers: (model: string) => `${OURS}:${model}:workers`,
  worker: (model: string, worker: string) => `${OURS}:${model}:worker:${worker}`,
};

/** Where a Redis is: options both ioredis and BullMQ take. */
export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
}

/** The connection options of a redis:// or rediss:// URL; anything else is refused naming the flag. */
export function parseRedisUrl(text: string, flag = '--queue'): RedisTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${flag}: expected a URL redis://HOST:PORT[/DB], got "${text}"`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UsageError(`${flag}: expected a redis:// or rediss:// URL, got "${text}"`);
  }
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) throw new UsageError(`${flag}: the database in "${text}" must be a number, got "${db}"`);
  return {
    host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    db: db ? Number(db) : 0,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** What a URL is shown as in messages: without its password. */
export function displayRedisUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return text;
  }
}

/** How long (ms) the start-up check waits for Redis to answer. */
const CONNECT_TIMEOUT_MS = 3000;

/**
 * Connects once, without retrying, and pings: an unreachable or refusing Redis is a UsageError naming the URL.
 * Long-running clients afterwards reconnect on their own (a Redis restart is survived, not reported).
 */
export async function checkRedisReachable(text: string, flag = '--queue'): Promise<void> {
  const client = new Redis({
    ...parseRedisUrl(text, flag),
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let cause = '';
  client.on('error', (e: Error) => (cause ||= e.message)); // the socket's reason (ECONNREFUSED...), reported below
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    throw new UsageError(`${flag} ${displayRedisUrl(text)}: Redis is not reachable (${cause || (e as Error).message || String(e)})`);
  } finally {
    client.disconnect();
  }
}

/** A long-lived client: retries while Redis restarts (commands wait, they do not fail), as BullMQ needs. */
export function redisClient(text: string): Redis {
  const client = new Redis({ ...parseRedisUrl(text), maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2000) });
  // ioredis reports each failed reconnect as an 'error' event; without a listener Node would treat it as fatal
  client.on('error', () => {});
  return client;
}
