// A training data folder as users lay it out: images plus `captions.jsonl`, one {"file": ..., "caption": ...}
// object per line (other keys are ignored). Reading checks everything before training starts and names the line
// and file at fault: bad JSON, a missing key, a file outside the folder, a missing or unreadable image.
// Images are PNG (8-bit RGB or RGBA; alpha is dropped), resized to cover the training size and centre-cropped.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostTensor } from '../io/host-tensor.js';
import { decodePng } from '../io/png.js';
import { resizeAndCrop } from '../pipeline/resolution.js';

export interface CaptionRecord {
  /** 1-based line of captions.jsonl. */
  readonly line: number;
  /** Path relative to the folder, as written in the file. */
  readonly file: string;
  readonly caption: string;
}

export class DataFolderError extends Error {
  override name = 'DataFolderError';
}

/** Parses and checks `dir/captions.jsonl`; every listed image must exist inside `dir`. */
export function readCaptionFolder(dir: string): CaptionRecord[] {
  const list = path.join(dir, 'captions.jsonl');
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new DataFolderError(`data folder ${dir}: not a folder`);
  if (!fs.existsSync(list)) throw new DataFolderError(`data folder ${dir}: no captions.jsonl (one {"file": ..., "caption": ...} per line)`);
  const root = fs.realpathSync(dir);
  const records: CaptionRecord[] = [];
  const lines = fs.readFileSync(list, 'utf8').split('\n');
  lines.forEach((text, i) => {
    const line = i + 1;
    if (!text.trim()) return;
    const where = `${list} line ${line}`;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new DataFolderError(`${where}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DataFolderError(`${where}: expected a JSON object`);
    const { file, caption } = value as { file?: unknown; caption?: unknown };
    if (typeof file !== 'string' || !file) throw new DataFolderError(`${where}: "file" must be a non-empty string`);
    if (typeof caption !== 'string') throw new DataFolderError(`${where}: "caption" must be a string`);
    const full = path.resolve(dir, file);
    if (!fs.existsSync(full)) throw new DataFolderError(`${where}: image ${file} does not exist`);
    const real = fs.realpathSync(full);
    if (real !== root && !real.startsWith(root + path.sep)) throw new DataFolderError(`${where}: image ${file} is outside the data folder`);
    if (!fs.statSync(real).isFile()) throw new DataFolderError(`${where}: ${file} is not a file`);
    records.push({ line, file, caption });
  });
  if (!records.length) throw new DataFolderError(`${list}: no examples`);
  return records;
}

/**
 * Loads a record's image as float32 [3, size, size] in [-1, 1] (resized to cover, centre-cropped), naming the file
 * and line when it cannot be read.
 */
export function loadTrainingImage(dir: string, record: CaptionRecord, size: number): Float32Array {
  const where = `${path.join(dir, 'captions.jsonl')} line ${record.line}: image ${record.file}`;
  let png;
  try {
    png = decodePng(fs.readFileSync(path.resolve(dir, record.file)));
  } catch (e) {
    throw new DataFolderError(`${where} cannot be read as a PNG (${(e as Error).message})`);
  }
  const { width, height, rgb } = png;
  const planes = new Float32Array(3 * width * height);
  const n = width * height;
  for (let i = 0; i < n; i++) {
    planes[i] = rgb[3 * i] / 127.5 - 1;
    planes[n + i] = rgb[3 * i + 1] / 127.5 - 1;
    planes[2 * n + i] = rgb[3 * i + 2] / 127.5 - 1;
  }
  if (width === size && height === size) return planes;
  return resizeAndCrop(HostTensor.float32([1, 3, height, width], planes), size, size).data;
}
