// Who may call the API: with a key, every /api and /v1 route needs "Authorization: Bearer KEY" (compared in
// constant time); without one, the server only listens on loopback. ref: docs/server.md "Options"

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

const PROTECTED = /^\/(api|v1)(\/|$|\?)/;

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Refuses to expose an unauthenticated generator to the network. */
export function checkExposure(host: string, apiKey: string | undefined): void {
  if (!isLoopbackHost(host) && !apiKey) {
    throw new Error(
      `refusing to listen on ${host} without an API key: anyone who can reach it could use this machine; give --api-key KEY (or set SANA_API_KEY), or listen on 127.0.0.1`,
    );
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function installAuth(app: FastifyInstance, apiKey: string | undefined): void {
  if (!apiKey) return;
  const expected = digest(apiKey);
  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS' || !PROTECTED.test(request.url)) return;
    const header = request.headers.authorization;
    const given = header?.match(/^Bearer\s+(.+)$/i)?.[1];
    if (!given) {
      throw new ApiError(401, 'this server needs an API key: send "Authorization: Bearer KEY"', 'authentication_error', null, {
        'WWW-Authenticate': 'Bearer',
      });
    }
    if (!timingSafeEqual(digest(given.trim()), expected)) {
      throw new ApiError(401, 'wrong API key', 'authentication_error', null, { 'WWW-Authenticate': 'Bearer' });
    }
  });
}
