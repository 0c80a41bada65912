// Typed reading of JSON config files (config.json, scheduler_config.json, model_index.json) with errors that name
// the file and key. Lenient about the non-standard JSON tokens Python writes (-Infinity, Infinity, NaN).

import * as fs from 'node:fs';
import { containedFile } from './contained-path.js';
import { parseLenientJson } from './lenient-json.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Largest JSON file a model folder may hold (a Gemma tokenizer.json is ~17 MB; configs are a few KB). */
export const MAX_JSON_BYTES = 256 << 20;

/**
 * Reads a model folder's JSON file (config.json, model_index.json, tokenizer.json). The file must lie inside its own
 * folder (no link out of it, except a Hugging Face cache blob) and be a regular file, checked before it is read.
 */
export function readJsonFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    containedFile(file);
    const size = fs.statSync(file).size;
    if (size > MAX_JSON_BYTES) throw new ConfigError(`${file}: ${size} bytes, more than the ${MAX_JSON_BYTES} a JSON file of a model may have`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof Error && !(e as NodeJS.ErrnoException).code) throw e;
    throw new ConfigError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const v = parseLenientJson(text, file);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${file}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * The largest integer a config may hold (2^24). Config integers are dimensions, counts and token ids: the largest in
 * any released checkpoint of these models is a vocabulary of 256,000, and parsers size arrays by them (a layer list
 * of num_hidden_layers entries), so 2^31 layers would exhaust the heap while the config is still being read.
 */
export const MAX_CONFIG_INT = 2 ** 24;

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
    throw new ConfigError(`${this.file}: config key "${key}" ${message}`);
  }

  private invalid(key: string, expected: string): never {
    const v = this.raw[key];
    return this.fail(key, `must be ${expected} (got ${v === undefined ? 'missing' : shownValue(v)})`);
  }

  int(key: string, fallback?: number, min = -Infinity): number {
    if (!this.has(key)) return fallback !== undefined ? fallback : this.invalid(key, 'an integer');
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.invalid(key, `an integer >= ${min}`);
    if (Math.abs(v as number) > MAX_CONFIG_INT) this.invalid(key, `an integer of at most ${MAX_CONFIG_INT} (2^24)`);
    return v as number;
  }

  positiveInt(key: string, fallback?: number): number {
    return this.int(key, fallback, 1);
  }

  /** A finite number: the NaN and Infinity that lenient JSON lets through are never a usable setting. */
  number(key: string, fallback?: number): number {
    if (!this.has(key)) return fallback !== undefined ? fallback : this.invalid(key, 'a number');
    const v = this.raw[key];
    if (typeof v !== 'number') this.invalid(key, 'a number');
    if (!Number.isFinite(v)) this.invalid(key, 'a finite number');
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
    if (v.some((x: number) => Math.abs(x) > MAX_CONFIG_INT)) this.invalid(key, `a list of integers of at most ${MAX_CONFIG_INT} (2^24)`);
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

/** A config value as a message shows it: JSON, except the non-finite numbers JSON cannot spell, and cut short. */
export function shownValue(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
