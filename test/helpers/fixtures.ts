// Access to the golden fixtures in ../shared/fixtures (produced by the reference implementation).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostTensor } from '../../src/io/host-tensor.js';
import { readSafetensors } from '../../src/io/safetensors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (tests run from dist/test/helpers). */
export const repoRoot = path.resolve(here, '..', '..', '..');

export const fixturesRoot = process.env.SANA_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');

export function fixturePath(...parts: string[]): string {
  return path.join(fixturesRoot, ...parts);
}

export interface Tolerance {
  atol: number;
  rtol: number;
  rel_l2?: number;
}

export interface Manifest {
  kind: string;
  component_dir?: string;
  config?: Record<string, unknown>;
  calls?: Array<{ method?: string; inputs: Record<string, string>; outputs: Record<string, string> }>;
  tolerance?: Record<string, Tolerance | Record<string, number>>;
  notes?: unknown;
  [key: string]: unknown;
}

export function loadManifest(fixture: string): Manifest {
  return JSON.parse(fs.readFileSync(fixturePath(fixture, 'manifest.json'), 'utf8')) as Manifest;
}

const cache = new Map<string, Map<string, HostTensor>>();
export function loadTensors(fixture: string, file: 'inputs' | 'outputs' | 'intermediates'): Map<string, HostTensor> {
  const key = `${fixture}/${file}`;
  let t = cache.get(key);
  if (!t) {
    t = readSafetensors(fixturePath(fixture, `${file}.safetensors`));
    cache.set(key, t);
  }
  return t;
}

export function fixtureTensor(fixture: string, file: 'inputs' | 'outputs' | 'intermediates', name: string): HostTensor {
  const t = loadTensors(fixture, file).get(name);
  if (!t) throw new Error(`fixture ${fixture}/${file}.safetensors has no tensor "${name}"`);
  return t;
}
