// Shared pieces of the property-based fuzz suites (fast-check): one fixed seed (printed, overridable with
// FUZZ_SEED to reproduce or explore), case counters per target, and the check that a failure is one of ours.

import assert from 'node:assert/strict';

/** Issue 17's number; FUZZ_SEED=<n> replays another run. */
export const FUZZ_SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 17;

export interface FuzzCounts {
  cases: number;
  loaded: number;
  refused: number;
}

export const counts = new Map<string, FuzzCounts>();

export function tally(target: string, outcome: 'loaded' | 'refused'): void {
  const c = counts.get(target) ?? { cases: 0, loaded: 0, refused: 0 };
  c.cases++;
  c[outcome]++;
  counts.set(target, c);
}

export function report(): string {
  const lines = [...counts.entries()].map(([t, c]) => `${t.padEnd(34)} ${String(c.cases).padStart(5)} cases: ${c.loaded} loaded, ${c.refused} refused`);
  const total = [...counts.values()].reduce((n, c) => n + c.cases, 0);
  return [`fuzz seed ${FUZZ_SEED}`, ...lines, `${'total'.padEnd(34)} ${String(total).padStart(5)} cases`].join('\n');
}

/** JavaScript's own errors: one of these escaping a loader is a crash, not a refusal. */
const ENGINE_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError];

/**
 * `e` is a refusal of ours: an Error of one of `names` (not an engine error), whose message starts with `subject`
 * (the file, folder or field it is about) and carries no stack trace.
 */
export function assertOwnError(e: unknown, names: readonly string[], subject: string | RegExp): asserts e is Error {
  assert.ok(e instanceof Error, `threw a non-error: ${String(e)}`);
  assert.ok(!ENGINE_ERRORS.some((c) => e.constructor === c), `a crash (${e.name}): ${e.stack}`);
  assert.ok(names.includes(e.name), `error type ${e.name} is not one of ${names.join(', ')}: ${e.message}`);
  assert.ok(e.message.length > 0, 'an empty message');
  if (typeof subject === 'string') assert.ok(e.message.startsWith(subject), `the message does not start with ${subject}: ${e.message}`);
  else assert.match(e.message, subject);
  assert.doesNotMatch(e.message, /\n\s+at .+:\d+:\d+/, 'a stack trace in the message');
}

/** JSON as Python writes it: NaN, Infinity and -Infinity as bare tokens (what diffusers' save_pretrained emits). */
export function pythonJson(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_k, v) => {
    if (typeof v === 'number' && !Number.isFinite(v)) {
      marks.push(Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');
      return `\u0000${marks.length - 1}\u0000`;
    }
    return v;
  });
  return text.replace(/"\\u0000(\d+)\\u0000"/g, (_m, i) => marks[Number(i)]);
}
