// `node:crypto` in the page: the SHA-256 hashes the library keys its caches with (prefix cache, weight cache,
// session cache), from @noble/hashes, with Node's createHash(...).update(...).digest('hex') shape.

import { sha256 } from '@noble/hashes/sha2.js';

class Sha256 {
  private readonly h = sha256.create();

  update(data: string | Uint8Array): this {
    this.h.update(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    return this;
  }

  digest(encoding: 'hex'): string {
    if (encoding !== 'hex') throw new Error(`node:crypto in the browser build: digest('${encoding}') is not supported, only 'hex'`);
    return Array.from(this.h.digest(), (b) => b.toString(16).padStart(2, '0')).join('');
  }
}

export function createHash(algorithm: string): Sha256 {
  if (algorithm !== 'sha256') throw new Error(`node:crypto in the browser build: only sha256, not ${algorithm}`);
  return new Sha256();
}

export function randomUUID(): string {
  return globalThis.crypto.randomUUID();
}

export default { createHash, randomUUID };
