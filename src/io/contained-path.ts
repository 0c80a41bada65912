// Every file a model folder names stays inside that folder. A checkpoint is data from elsewhere: its shard index,
// its model_index.json and its configs name files and folders, and a name with `..`, an absolute path or a symlink
// could otherwise make us read (and echo in an error message) any file on the machine. One exception, because the
// Hugging Face cache is built that way: a file under `<repo>/snapshots/<rev>/` may be a link to `<repo>/blobs/<hash>`
// of the same repo folder.
//
// The check runs before anything is opened, so no byte of an outside file is ever read.

import * as fs from 'node:fs';
import * as path from 'node:path';

export class ContainmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContainmentError';
  }
}

/** Who names a path, for the error message: the file that holds the name and, when there is one, the key. */
export interface NamedBy {
  /** The file (an index, model_index.json) or folder in which the name was found or looked up. */
  readonly file: string;
  /** Where in that file, as it should be shown, e.g. `"weight_map" entry "a.weight"` or `"transformer"`. */
  readonly key?: string;
}

export interface ContainedOptions {
  /** What must be there when it exists: a regular file (links followed) or a folder. */
  readonly kind?: 'file' | 'folder';
}

/**
 * `folder/name`, refused with a ContainmentError when it leaves `folder`: `name` must be a relative path without NUL
 * bytes and without `..` steps that climb out, and its real path (every link followed) must lie inside the real path
 * of `folder`, or be a blob of the same Hugging Face cache repo. Returns the joined path (not the real one). A path
 * that does not exist is returned as it is, for the caller to report as missing.
 */
export function containedPath(folder: string, name: string, namedBy: NamedBy, options: ContainedOptions = {}): string {
  const shown = typeof name === 'string' ? JSON.stringify(name) : `a ${typeof name}`;
  const base = path.resolve(folder);
  const joined = typeof name === 'string' ? path.resolve(base, name) : base;
  // Names found in a file are reported with the file and key; names we look up ourselves by their path.
  const subject = namedBy.key ? `${namedBy.file}: ${namedBy.key} names ${shown},` : `${joined}:`;
  const which = namedBy.key ? ' which' : '';
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new ContainmentError(`${namedBy.file}: ${namedBy.key ?? 'a name'} is ${shown}, which is not a usable file name`);
  }
  if (path.isAbsolute(name) || !isInside(joined, base)) {
    throw new ContainmentError(`${subject}${which} points outside the folder ${folder} (absolute paths and ".." are not allowed)`);
  }
  const real = realPathOf(joined, subject);
  if (real !== undefined) {
    const realBase = realPathOf(base, `${folder}:`) ?? base;
    if (!isInside(real, realBase) && !isHubBlobOf(real, base)) {
      throw new ContainmentError(`${subject} a link that leads outside the folder ${folder} (to ${real})`);
    }
    if (options.kind) checkKind(joined, options.kind, subject);
  }
  return path.join(folder, name);
}

function isInside(p: string, folder: string): boolean {
  const rel = path.relative(folder, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/**
 * Real path of `p`; undefined when nothing is there (the caller then reports a missing file, having read nothing).
 * A link whose target is missing is an error of its own: "missing" would hide where it points.
 */
function realPathOf(p: string, subject: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ContainmentError(`${subject} cannot be resolved (${code ?? String(e)})`);
  }
  let linkStat: fs.Stats | undefined;
  try {
    linkStat = fs.lstatSync(p);
  } catch {
    // nothing at p itself: fine, the caller reports a missing file
  }
  if (linkStat?.isSymbolicLink()) throw new ContainmentError(`${subject} a broken link (its target does not exist)`);
  return undefined;
}

/**
 * The Hugging Face cache stores each file once, under `<repo>/blobs/<hash>`, and links it from
 * `<repo>/snapshots/<rev>/<path>`. A real path is such a blob when `folder` lies in a snapshot of a repo folder and
 * the real path is a direct child of that repo's own blobs folder.
 */
function isHubBlobOf(real: string, folder: string): boolean {
  const parts = folder.split(path.sep);
  const at = parts.lastIndexOf('snapshots');
  if (at < 1 || at + 1 >= parts.length) return false;
  const repo = parts.slice(0, at).join(path.sep) || path.sep;
  let blobs: string;
  try {
    blobs = fs.realpathSync(path.join(repo, 'blobs'));
  } catch {
    return false;
  }
  return path.dirname(real) === blobs;
}

function checkKind(p: string, kind: 'file' | 'folder', subject: string): void {
  const st = fs.statSync(p);
  if (kind === 'file' && !st.isFile()) throw new ContainmentError(`${subject} ${describeKind(st)} where a file is expected`);
  if (kind === 'folder' && !st.isDirectory()) throw new ContainmentError(`${subject} ${describeKind(st)} where a folder is expected`);
}

/** "a folder", "a FIFO", ... for messages about what is at a path. */
export function describeKind(st: fs.Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** A file inside its own folder (a config.json, a tokenizer.json): the containment check for a path given whole. */
export function containedFile(file: string): string {
  const dir = path.dirname(file);
  containedPath(dir, path.basename(file), { file: dir }, { kind: 'file' });
  return file;
}
