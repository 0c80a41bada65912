// Class 1 of issue 17: a write that did not complete is never reported as written. The shared writer
// (src/io/atomic-write.ts, behind PNG, safetensors, caches, checkpoints and server outputs) is driven into the file
// size limit (`ulimit -f`, a child process: Node ignores SIGXFSZ, so the limit is an EFBIG error, and the first
// write that crosses it is merely short) and into a full disk (a 64 KiB tmpfs in a private mount namespace); it must
// fail with a clear message and a non-zero exit and leave neither the file nor a temporary. A folder, FIFO or device
// given as the target is refused and left as it was.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { WriteError, checkWritableTarget, writeBytesAtomic, writeFileAtomic } from '../src/io/atomic-write.js';
import { decodePng } from '../src/io/png.js';
import { repoRoot } from './helpers/fixtures.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-writes-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let counter = 0;
function freshDir(): string {
  const d = path.join(root, `case${++counter}`);
  fs.mkdirSync(d);
  return d;
}

const writerUrl = pathToFileURL(path.join(repoRoot, 'dist', 'src', 'io', 'atomic-write.js')).href;

/**
 * A child script that writes `bytes` bytes to `target` with writeBytesAtomic, prints what it finds in the folder
 * afterwards as JSON on stdout, and exits 0 if the write reported success, 2 if it threw.
 */
function writerScript(target: string, bytes: number): string {
  return `
import * as fs from 'node:fs';
import * as path from 'node:path';
const { writeBytesAtomic } = await import(${JSON.stringify(writerUrl)});
const target = ${JSON.stringify(target)};
let code = 0;
try {
  writeBytesAtomic(target, Buffer.alloc(${bytes}, 7));
} catch (e) {
  process.stderr.write(e.message + '\\n');
  code = 2;
}
const dir = path.dirname(target);
const files = fs.readdirSync(dir).map((f) => ({ name: f, size: fs.statSync(path.join(dir, f)).size }));
process.stdout.write(JSON.stringify(files));
process.exit(code);
`;
}

function runInShell(shell: string, script: string) {
  const r = spawnSync('bash', ['-c', shell, 'bash', process.execPath, script], { encoding: 'utf8' });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('a write that stops short is an error, never a truncated file', () => {
  test('the file size limit (ulimit -f): a clear error, exit 2, no file and no temporary', () => {
    const dir = freshDir();
    const target = path.join(dir, 'big.png');
    // 40 KiB limit, 100 KiB to write: the first write(2) stores 40 KiB and returns short, the next one gets EFBIG
    const r = runInShell('ulimit -f 40 && exec "$1" --input-type=module -e "$2"', writerScript(target, 100 * 1024));
    assert.equal(r.signal, null, 'not killed by SIGXFSZ');
    assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
    assert.equal(r.stderr.trim(), `cannot write ${target}: the file size limit was reached (EFBIG; see ulimit -f); nothing was written`);
    assert.deepEqual(JSON.parse(r.stdout), []);
  });

  test('the file size limit over an existing file keeps the old file whole', () => {
    const dir = freshDir();
    const target = path.join(dir, 'keep.bin');
    fs.writeFileSync(target, 'previous');
    const r = runInShell('ulimit -f 40 && exec "$1" --input-type=module -e "$2"', writerScript(target, 100 * 1024));
    assert.equal(r.code, 2);
    assert.deepEqual(JSON.parse(r.stdout), [{ name: 'keep.bin', size: 8 }]);
    assert.equal(fs.readFileSync(target, 'utf8'), 'previous');
  });

  test('a full disk (ENOSPC, a 64 KiB tmpfs): a clear error, exit 2, nothing left on the disk', () => {
    // unshare -rm: a private mount namespace (root inside it), so the tmpfs exists for this child only
    const mnt = freshDir();
    const target = path.join(mnt, 'out.safetensors');
    const r = runInShell(`unshare -rm sh -c 'mount -t tmpfs -o size=64k tmpfs "$0" && exec "$1" --input-type=module -e "$2"' ${JSON.stringify(mnt)} "$1" "$2"`, writerScript(target, 200 * 1024));
    assert.equal(r.code, 2, `exit code (stderr: ${r.stderr}); this test needs unshare with mount namespaces (util-linux)`);
    assert.equal(r.stderr.trim(), `cannot write ${target}: the disk is full (ENOSPC); nothing was written`);
    assert.deepEqual(JSON.parse(r.stdout), []);
  });

  test('a writer that reports fewer bytes than the file holds is caught by the size check', () => {
    const dir = freshDir();
    const target = path.join(dir, 'x.bin');
    // writing around the sink (straight to the fd) leaves the file longer than what the sink counted
    assert.throws(
      () =>
        writeFileAtomic(target, (out) => {
          out.write('abc');
          const tmp = fs.readdirSync(dir).find((f) => f.endsWith('.tmp'))!;
          fs.appendFileSync(path.join(dir, tmp), 'extra');
        }),
      (e: Error) => e instanceof WriteError && e.message === `cannot write ${target}: 3 bytes were written but the file holds 8; nothing was written`,
    );
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

describe('only a regular file or a new name is written', () => {
  const refusedTarget = (target: string, kind: string) => (e: Error) =>
    e instanceof WriteError && e.message === `cannot write ${target}: it is ${kind}, not a regular file; refusing to replace it`;

  test('a folder, a FIFO and a character device are refused and left as they were', () => {
    const dir = freshDir();
    const folder = path.join(dir, 'out.png');
    fs.mkdirSync(folder);
    assert.throws(() => writeBytesAtomic(folder, 'x'), refusedTarget(folder, 'a folder'));
    assert.ok(fs.statSync(folder).isDirectory());
    const fifo = path.join(dir, 'fifo.png');
    execFileSync('mkfifo', [fifo]);
    assert.throws(() => writeBytesAtomic(fifo, 'x'), refusedTarget(fifo, 'a FIFO (named pipe)'));
    assert.ok(fs.statSync(fifo).isFIFO());
    // a copy of /dev/null's device node (1, 3), so that a regression cannot replace the machine's own
    const device = path.join(dir, 'null');
    execFileSync('mknod', [device, 'c', '1', '3']);
    assert.throws(() => writeBytesAtomic(device, 'x'), refusedTarget(device, 'a character device'));
    assert.ok(fs.statSync(device).isCharacterDevice());
    assert.deepEqual(fs.readdirSync(dir).sort(), ['fifo.png', 'null', 'out.png']);
  });

  test('/dev/null and /dev/full are refused by the target check', () => {
    for (const dev of ['/dev/null', '/dev/full']) assert.throws(() => checkWritableTarget(dev), refusedTarget(dev, 'a character device'));
  });

  test('a link to a regular file is written through; the link stays a link', () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'real.txt'), 'old');
    fs.symlinkSync('real.txt', path.join(dir, 'link.txt'));
    writeBytesAtomic(path.join(dir, 'link.txt'), 'new');
    assert.ok(fs.lstatSync(path.join(dir, 'link.txt')).isSymbolicLink());
    assert.equal(fs.readFileSync(path.join(dir, 'real.txt'), 'utf8'), 'new');
    fs.symlinkSync('nowhere.txt', path.join(dir, 'broken.txt'));
    assert.throws(() => writeBytesAtomic(path.join(dir, 'broken.txt'), 'x'), /broken\.txt: it is a broken link; nothing was written/);
  });
});

test('sana generate under ulimit -f: exit 2 with the message, no PNG reported as written, none on disk', () => {
  const dir = freshDir();
  const out = path.join(dir, 'shapes.png');
  const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  const args = ['generate', 'a red circle left of a blue square', '--steps', '8', '--seed', '1', '--width', '512', '--height', '512', '--quiet', '--threads', '2', '-o', out];
  // the same command without the limit writes a PNG larger than 8 KiB: the limit is what the test exercises
  const free = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  assert.equal(free.status, 0, free.stderr);
  assert.ok(fs.statSync(out).size > 8 * 1024, `PNG of ${fs.statSync(out).size} bytes`);
  assert.equal(decodePng(fs.readFileSync(out)).width, 512);
  fs.rmSync(out);
  const r = spawnSync('bash', ['-c', 'ulimit -f 8 && exec "$@"', 'bash', process.execPath, cli, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), `sana generate: cannot write ${out}: the file size limit was reached (EFBIG; see ulimit -f); nothing was written`);
  assert.deepEqual(fs.readdirSync(dir), []);
});
