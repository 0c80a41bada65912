// Typed reading of JSON config files (config.json, scheduler_config.json, model_index.json) with errors that name
// the file and key. Lenient about the non-standard JSON tokens Python writes (-Infinity, Infinity, NaN).

import * as fs from 'node:fs';
import { parseLenientJson } from './lenient-json.js';

export function readJsonFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const v = parseLenientJson(text, file);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${file}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** Typed getters over a config object; every error names the file and key and what was expected. */
export class ConfigReader {
  constructor(
    readonly file: string,
    readonly raw: Record<string, unknown>,
  ) {}

  static open(file: string): ConfigReader {
    return new ConfigReader(file, readJsonFile(file));
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** Throws an error naming the file and key: `<file>: config key "<key>" <message>`. */
  fail(key: string, message: string): never {
    throw new Error(`${this.file}: config key "${key}" ${message}`);
  }

  private invalid(key: string, expected: string): never {
    const v = this.raw[key];
    return this.fail(key, `must be ${expected} (got ${v === undefined ? 'missing' : JSON.stringify(v)})`);
  }

  int(key: string, fallback?: number, min = -Infinity): number {
    if (!this.has(key)) return fallback !== undefined ? fallback : this.invalid(key, 'an integer');
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.invalid(key, `an integer >= ${min}`);
    return v as number;
  }

  positiveInt(key: string, fallback?: number): number {
    return this.int(key, fallback, 1);
  }

  number(key: string, fallback?: number): number {
    if (!this.has(key)) return fallback !== undefined ? fallback : this.invalid(key, 'a number');
    const v = this.raw[key];
    if (typeof v !== 'number') this.invalid(key, 'a number');
    return v as number;
  }

  positiveNumber(key: string, fallback?: number): number {
    const v = this.number(key, fallback);
    if (!Number.isFinite(v) || v <= 0) this.invalid(key, 'a positive number');
    return v;
  }

  /** One of a fixed set of JSON scalars (strings, numbers, booleans, null). */
  choice<T extends string | number | boolean | null>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.raw[key] === undefined ? fallback : this.raw[key];
    if (!allowed.includes(v as T)) this.invalid(key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    return v as T;
  }

  optionalNumber(key: string): number | undefined {
    return this.has(key) ? this.number(key) : undefined;
  }

  string(key: string, fallback?: string): string {
    if (!this.has(key)) return fallback !== undefined ? fallback : this.invalid(key, 'a string');
    const v = this.raw[key];
    if (typeof v !== 'string') this.invalid(key, 'a string');
    return v as string;
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  bool(key: string, fallback?: boolean): boolean {
    if (!this.has(key)) return fallback !== undefined ? fallback : this.invalid(key, 'true or false');
    const v = this.raw[key];
    if (typeof v !== 'boolean') this.invalid(key, 'true or false');
    return v as boolean;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.string(key, fallback);
    if (!allowed.includes(v as T)) this.invalid(key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    return v as T;
  }

  intArray(key: string, fallback?: number[]): number[] {
    if (!this.has(key)) return fallback !== undefined ? fallback : this.invalid(key, 'a list of integers');
    const v = this.raw[key];
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) this.invalid(key, 'a list of integers');
    return v as number[];
  }

  stringArray(key: string, fallback?: string[]): string[] {
    if (!this.has(key)) return fallback !== undefined ? fallback : this.invalid(key, 'a list of strings');
    const v = this.raw[key];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.invalid(key, 'a list of strings');
    return v as string[];
  }

  /** A value that may be a single item or a per-stage list (diffusers allows both). */
  perStage<T>(key: string, stages: number, isItem: (v: unknown) => v is T, fallback?: T | T[]): T[] {
    const v = this.has(key) ? this.raw[key] : fallback;
    if (v === undefined) this.invalid(key, `a value or a list of ${stages}`);
    if (Array.isArray(v)) {
      if (v.length !== stages || !v.every(isItem)) this.invalid(key, `a list of ${stages} values`);
      return v as T[];
    }
    if (!isItem(v)) this.invalid(key, 'a valid value');
    return new Array<T>(stages).fill(v as T);
  }
}
