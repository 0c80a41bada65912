// Nothing half-written on disk, and nothing reported as written that is not. Every file we produce is written under
// a temporary name in the same folder, every write is checked for its byte count (a write near a full disk or the
// `ulimit -f` size limit stores only part of its bytes and reports success), the file is flushed to the disk with
// fsync and its size compared with what was written, and only then renamed into place. A regular file is written
// only over a regular file or a new name: a folder, FIFO, device or socket given as the target is refused, never
// replaced (renaming over /dev/null would replace the device node).
//
// Node ignores SIGXFSZ (measured: SigIgn has bit 25 set in /proc/self/status), so exceeding the file size limit is
// an EFBIG error from write(2), not a killed process; the first write that crosses the limit is merely short.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeKind } from './contained-path.js';

export class WriteError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WriteError';
  }
}

/** Where a writer puts its bytes: each call writes all of them or throws. */
export interface FileSink {
  write(bytes: Uint8Array | string): void;
  /** Bytes written so far. */
  readonly bytesWritten: number;
}

/** Largest piece handed to one write(2) call (Linux moves at most ~2 GiB per call). */
const MAX_WRITE = 1 << 30;

/** What each failing errno means to a user, so the message says why without a stack trace. */
const REASONS: Record<string, string> = {
  ENOSPC: 'the disk is full (ENOSPC)',
  EFBIG: 'the file size limit was reached (EFBIG; see ulimit -f)',
  EDQUOT: 'the disk quota is exhausted (EDQUOT)',
  EROFS: 'the file system is read-only (EROFS)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'operation not permitted (EPERM)',
  ENOENT: 'the folder does not exist (ENOENT)',
  ENOTDIR: 'a part of the path is not a folder (ENOTDIR)',
  EIO: 'an input/output error (EIO)',
  EISDIR: 'it is a folder (EISDIR)',
};

function reasonOf(e: unknown): string {
  if (e instanceof WriteError) return e.message;
  const code = (e as NodeJS.ErrnoException).code;
  if (code) return REASONS[code] ?? code;
  return (e as Error).message ?? String(e);
}

/**
 * The path whose folder receives the file: the target itself, or, when the target is a link to a regular file, the
 * file it leads to (so the link survives). Anything else that already exists there is refused.
 */
function resolveTarget(filePath: string): string {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(filePath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return filePath; // a new name
    throw new WriteError(`cannot write ${filePath}: ${reasonOf(e)}; nothing was written`, { cause: e });
  }
  if (st.isFile()) return filePath;
  if (st.isSymbolicLink()) {
    let target: fs.Stats;
    try {
      target = fs.statSync(filePath);
    } catch {
      throw new WriteError(`cannot write ${filePath}: it is a broken link; nothing was written`);
    }
    if (target.isFile()) return fs.realpathSync(filePath);
    st = target;
  }
  throw new WriteError(`cannot write ${filePath}: it is ${describeKind(st)}, not a regular file; refusing to replace it`);
}

/** Refuses an output path that could not receive a regular file (checked again when writing). */
export function checkWritableTarget(filePath: string): void {
  resolveTarget(filePath);
}

export function writeFileAtomic(filePath: string, write: (out: FileSink) => void): void {
  const target = resolveTarget(filePath);
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    // 'wx': a fresh file, never something (a link) that was already at the temporary name
    fd = fs.openSync(tmp, 'wx');
  } catch (e) {
    throw new WriteError(`cannot write ${filePath}: ${reasonOf(e)}; nothing was written`, { cause: e });
  }
  const out = fileSink(fd);
  try {
    write(out);
    const size = fs.fstatSync(fd).size;
    if (size !== out.bytesWritten) throw new WriteError(`${out.bytesWritten} bytes were written but the file holds ${size}`);
    fs.fsyncSync(fd);
    const closing = fd;
    fd = undefined;
    fs.closeSync(closing);
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // the write already failed; its error is the one to report
      }
    }
    fs.rmSync(tmp, { force: true });
    // a bug in the writer stays a bug (with its stack), not a message about the file
    if (e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError) throw e;
    throw new WriteError(`cannot write ${filePath}: ${reasonOf(e)}; nothing was written`, { cause: e });
  }
  syncFolder(dir);
}

export function writeBytesAtomic(filePath: string, bytes: Uint8Array | string): void {
  writeFileAtomic(filePath, (out) => out.write(bytes));
}

function fileSink(fd: number): FileSink {
  let total = 0;
  return {
    get bytesWritten() {
      return total;
    },
    write(bytes: Uint8Array | string) {
      const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
      let done = 0;
      while (done < buf.byteLength) {
        const n = fs.writeSync(fd, buf, done, Math.min(buf.byteLength - done, MAX_WRITE));
        // write(2) returns 0 only when the device takes no more bytes without saying why; do not spin on it
        if (n <= 0) throw new WriteError(`the device accepted no more bytes after ${total + done}`);
        done += n;
      }
      total += done;
    },
  };
}

/** Makes the rename itself durable; some file systems cannot sync a folder, which costs nothing but that. */
function syncFolder(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best effort: the file's own data is already on disk
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
