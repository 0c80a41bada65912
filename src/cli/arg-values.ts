// Parsers of command-line values that name the flag in their error.

import * as fs from 'node:fs';
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

/** The JSON object in the file a flag names (a config.json). */
export function readJsonArg(file: string, flag: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new UsageError(`${flag}: ${file} does not exist`);
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${flag}: ${file} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${flag}: ${file} must hold a JSON object`);
  return value as Record<string, unknown>;
}
