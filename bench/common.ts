// Shared benchmark helpers: timing with warm-up, median, GFLOP/s against the 450 GFLOP/s fp32 roofline of the
// reference machine class, peak RSS, and the .bench-cache folder for generated weight files.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOFLINE_GFLOPS = 450;

/** Repository root (benchmarks run from dist/bench). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function benchCache(...parts: string[]): string {
  const dir = path.join(repoRoot, '.bench-cache');
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, ...parts);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Wall time and process CPU time (user + system) of one call, in ms. CPU time is far less sensitive to other
 * processes competing for the cores, so it is the steadier figure on a shared machine with one intra-op thread. */
export async function timeWallCpu(fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

export function gflops(flop: number, ms: number): number {
  return flop / (ms * 1e6);
}

export function formatRate(flop: number, ms: number): string {
  const g = gflops(flop, ms);
  return `${g.toFixed(1)} GFLOP/s (${((100 * g) / ROOFLINE_GFLOPS).toFixed(1)}% of ${ROOFLINE_GFLOPS})`;
}

/** Deterministic pseudo-random fill (no need for statistical quality; values in [-0.5, 0.5)). */
export function fillRandom(a: Float32Array, seed: number): Float32Array {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

/** The value after `--name` on the command line, or the fallback. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** mulberry32: a small, fast, seeded generator of uniform numbers in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
