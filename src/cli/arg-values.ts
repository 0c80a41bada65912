// Parsers of command-line values that name the flag in their error.

import * as fs from 'node:fs';
import { LIMITS, Limit, LimitError, MIN_SIZE, capThreads, checkBounded } from '../limits.js';
import { parseLenientJson } from '../io/lenient-json.js';
import { UsageError } from './errors.js';

export function parseNumber(v: string, flag: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: expected a number, got "${v}"`);
  return n;
}

export function parsePositiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag}: expected a positive integer, got "${v}"`);
  return n;
}

/** A count flag within its limit (src/limits.ts), e.g. --steps N; the error names the flag and the reason. */
export function parseBounded(v: string, flag: string, limit: Limit, min = 1): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n)) throw new UsageError(`${flag}: expected an integer, got "${v}"`);
  try {
    return checkBounded(flag, n, limit, min);
  } catch (e) {
    throw e instanceof LimitError ? new UsageError(e.message) : e;
  }
}

/** An image size flag (px): from 32 to the size limit. */
export function parseImageSize(v: string, flag: string): number {
  return parseBounded(v, flag, LIMITS.size, MIN_SIZE);
}

/** --threads N: a positive integer, capped at the core count with a notice on stderr (more only contend). */
export function parseThreads(v: string | undefined, flag = '--threads', notice: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): number | undefined {
  if (v === undefined) return undefined;
  const capped = capThreads(parsePositiveInt(v, flag), flag);
  if (capped.notice) notice(`notice: ${capped.notice}`);
  return capped.threads;
}

/** The JSON object in the file a flag names (a config.json). */
export function readJsonArg(file: string, flag: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new UsageError(`${flag}: ${file} does not exist`);
  let value: unknown;
  try {
    // the same lenient reader as every config (Python's NaN / Infinity tokens; errors name the file, not its text)
    value = parseLenientJson(fs.readFileSync(file, 'utf8'), file);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${flag}: ${file} must hold a JSON object`);
  return value as Record<string, unknown>;
}
