// Nothing half-written on disk: every file we produce is written under a temporary name in the same folder and
// renamed into place only once complete.

import * as fs from 'node:fs';
import * as path from 'node:path';

export function writeFileAtomic(filePath: string, write: (fd: number) => void): void {
  const dir = path.dirname(path.resolve(filePath));
  const tmp = path.join(dir, `.${path.basename(filePath)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (e) {
    throw new Error(`cannot write ${filePath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, filePath);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message ?? String(e);
    throw new Error(`cannot write ${filePath}: ${reason} (nothing was written)`, { cause: e });
  }
}

export function writeBytesAtomic(filePath: string, bytes: Uint8Array): void {
  writeFileAtomic(filePath, (fd) => {
    fs.writeSync(fd, bytes);
  });
}
