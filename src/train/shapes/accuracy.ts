// Aggregates checker results over many images into per-category accuracy, overall check accuracy and the share
// of images that pass every check (GenEval's headline number), and prints them as a small table for a test's or
// an evaluation run's output.

import { CHECK_CATEGORIES, type CheckCategory, type CheckResult } from './checker.js';

export interface Tally {
  readonly passed: number;
  readonly total: number;
  /** passed / total, or NaN when nothing was checked. */
  readonly accuracy: number;
}

export interface CheckSummary {
  readonly categories: Readonly<Record<CheckCategory, Tally>>;
  /** Every attribute check counted once. */
  readonly checks: Tally;
  /** Images whose checks all passed. */
  readonly images: Tally;
}

function tally(passed: number, total: number): Tally {
  return { passed, total, accuracy: total === 0 ? Number.NaN : passed / total };
}

export function summarizeChecks(results: readonly CheckResult[]): CheckSummary {
  type Count = { passed: number; total: number };
  const counts = Object.fromEntries(CHECK_CATEGORIES.map((c) => [c, { passed: 0, total: 0 }])) as Record<CheckCategory, Count>;
  let passed = 0;
  let total = 0;
  for (const result of results) {
    for (const check of result.checks) {
      counts[check.category].total++;
      total++;
      if (check.passed) {
        counts[check.category].passed++;
        passed++;
      }
    }
  }
  const categories = Object.fromEntries(CHECK_CATEGORIES.map((c) => [c, tally(counts[c].passed, counts[c].total)])) as Record<CheckCategory, Tally>;
  return {
    categories,
    checks: tally(passed, total),
    images: tally(results.filter((r) => r.passed).length, results.length),
  };
}

function row(name: string, t: Tally): string {
  const percent = Number.isNaN(t.accuracy) ? '     -' : `${(100 * t.accuracy).toFixed(1).padStart(5)}%`;
  return `${name.padEnd(10)} ${percent}  ${String(t.passed).padStart(6)} / ${String(t.total).padEnd(6)}`;
}

/** A fixed-width table: one row per category, then all checks and whole images. */
export function formatCheckSummary(summary: CheckSummary): string {
  const lines = [`${'category'.padEnd(10)} ${'acc'.padStart(6)}  ${'passed'.padStart(6)} / total`];
  for (const c of CHECK_CATEGORIES) lines.push(row(c, summary.categories[c]));
  lines.push(row('checks', summary.checks));
  lines.push(row('images', summary.images));
  return lines.join('\n');
}
