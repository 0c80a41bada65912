// Sessions shared per compiled graph: loading the same model twice (two pipelines over one folder, a server that
// reloads a component) reuses the session instead of building and prepacking it again. A session is released when
// its last user releases it. The key is the model bytes' hash plus where its weights live and the session options.

import { createHash } from 'node:crypto';
import { Backend, CompiledModel, ModelSession, SessionOptions } from './backend.js';

interface Entry {
  session: Promise<ModelSession>;
  users: number;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly backend: Backend) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cache key, or undefined for models with in-memory weights (their bytes are not in the model proto). */
  static key(backend: Backend, model: CompiledModel, options: SessionOptions): string | undefined {
    if (model.memoryFiles?.size) return undefined;
    const h = createHash('sha256');
    h.update(backend.name);
    h.update(model.bytes);
    h.update(model.externalDataFolder ?? '');
    const { threads, optimization, prepack, noConstantFolding, profilePrefix, device, memoryArena, deviceOutputs, cacheOptimizedModel } = options;
    h.update(JSON.stringify([threads, optimization, prepack, noConstantFolding, profilePrefix, device ?? 'cpu', memoryArena, deviceOutputs ?? [], cacheOptimizedModel ?? false]));
    return h.digest('hex');
  }

  /** A session for `model`; the returned handle's release() drops this user's reference only. */
  async acquire(model: CompiledModel, options: SessionOptions = {}): Promise<ModelSession> {
    const key = SessionCache.key(this.backend, model, options);
    if (key === undefined) return this.backend.createSession(model, options);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { session: this.backend.createSession(model, options), users: 0 };
      this.entries.set(key, entry);
      entry.session.catch(() => this.entries.delete(key));
    }
    entry.users++;
    const session = await entry.session;
    let released = false;
    return {
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      run: (feeds, outputs) => session.run(feeds, outputs),
      runMixed: (feeds, outputs) => session.runMixed(feeds, outputs),
      release: async () => {
        if (released) return;
        released = true;
        const e = this.entries.get(key);
        if (!e || --e.users > 0) return;
        this.entries.delete(key);
        await session.release();
      },
    };
  }
}

/** A backend whose sessions are shared per compiled graph (see SessionCache). */
export function cachedBackend(backend: Backend): Backend & { cache: SessionCache } {
  const cache = new SessionCache(backend);
  return { name: backend.name, rejectsZeroSizedTensors: backend.rejectsZeroSizedTensors, cache, createSession: (model, options) => cache.acquire(model, options) };
}
