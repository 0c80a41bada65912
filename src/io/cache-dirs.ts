// Where generated files go (weight caches, prefix caches, optimized ONNX models) and what identifies the checkpoint
// files they were made from. Shared by every cache so that they agree on folders and on when a file is stale.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The default cache folders for a checkpoint folder: beside the weights when writable, then the user's cache. */
export function defaultWeightCacheDirs(checkpointDir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const xdg = env.XDG_CACHE_HOME;
  const userCache = path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'sana-ts');
  return [path.join(path.resolve(checkpointDir), '.sana-ts-cache'), userCache];
}

export interface SourceIdentity {
  path: string;
  size: number;
  mtimeMs: number;
  header: string;
}

/** Real path, size, mtime and header hash of each checkpoint file (what keys generated-weight and prefix caches). */
export function sourceIdentity(files: readonly string[]): SourceIdentity[] {
  return files.map((f) => {
    const real = fs.realpathSync(f);
    const fd = fs.openSync(real, 'r');
    try {
      const stat = fs.fstatSync(fd);
      const len = Buffer.alloc(8);
      fs.readSync(fd, len, 0, 8, 0);
      const headerBytes = Buffer.alloc(Math.min(Number(len.readBigUInt64LE(0)), Math.max(0, stat.size - 8)));
      fs.readSync(fd, headerBytes, 0, headerBytes.length, 8);
      const header = createHash('sha256').update(headerBytes).digest('hex');
      return { path: real, size: stat.size, mtimeMs: stat.mtimeMs, header };
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** Whether files can be created in `dir` (or in its nearest existing ancestor, where it would be made). */
export function writableFolder(dir: string): boolean {
  let probe = path.resolve(dir);
  while (!fs.existsSync(probe)) {
    const parent = path.dirname(probe);
    if (parent === probe) return false;
    probe = parent;
  }
  try {
    fs.accessSync(probe, fs.constants.W_OK);
    const st = fs.statSync(probe);
    // root passes access(W_OK) everywhere: a folder whose mode grants nobody write access is meant read-only
    return st.isDirectory() && (st.mode & 0o222) !== 0;
  } catch {
    return false;
  }
}
