// A model's weights as one name -> location map, whether the checkpoint is one safetensors file or shards listed
// by a `*.safetensors.index.json`. Only headers are read here; bytes are read lazily or bound by ONNX Runtime.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostTensor } from './host-tensor.js';
import { SafetensorsFile, TensorInfo } from './safetensors.js';

export interface WeightLocation {
  readonly file: SafetensorsFile;
  readonly info: TensorInfo;
}

export class WeightStore {
  private constructor(
    /** Where the weights came from (a file or an index), for error messages. */
    readonly source: string,
    private readonly locations: Map<string, WeightLocation>,
  ) {}

  static fromFiles(source: string, files: SafetensorsFile[]): WeightStore {
    const locations = new Map<string, WeightLocation>();
    for (const file of files) {
      for (const info of file.tensors.values()) {
        const prior = locations.get(info.name);
        if (prior) {
          throw new Error(`${source}: tensor "${info.name}" is in both ${prior.file.path} and ${file.path}`);
        }
        locations.set(info.name, { file, info });
      }
    }
    return new WeightStore(source, locations);
  }

  /** Opens a single `.safetensors` file or a sharded checkpoint's `.safetensors.index.json`. */
  static open(filePath: string): WeightStore {
    if (filePath.endsWith('.index.json')) return openSharded(filePath);
    return WeightStore.fromFiles(filePath, [SafetensorsFile.open(filePath)]);
  }

  get size(): number {
    return this.locations.size;
  }

  names(): IterableIterator<string> {
    return this.locations.keys();
  }

  has(name: string): boolean {
    return this.locations.has(name);
  }

  get(name: string): WeightLocation {
    const loc = this.locations.get(name);
    if (!loc) throw new Error(`${this.source}: no tensor named "${name}"`);
    return loc;
  }

  read(name: string): HostTensor {
    return this.get(name).file.read(name);
  }

  /** Paths of the safetensors files holding the weights (one, or every shard), in a stable order. */
  filePaths(): string[] {
    return [...new Set([...this.locations.values()].map((l) => l.file.path))].sort();
  }

  /** Total bytes of tensor data. */
  byteSize(): number {
    let n = 0;
    for (const loc of this.locations.values()) n += loc.info.byteLength;
    return n;
  }
}

function openSharded(indexPath: string): WeightStore {
  let index: { weight_map?: Record<string, string> };
  try {
    index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${indexPath}: cannot read shard index: ${(e as Error).message}`);
  }
  const weightMap = index.weight_map;
  if (!weightMap || typeof weightMap !== 'object') {
    throw new Error(`${indexPath}: shard index has no "weight_map" object`);
  }
  const dir = path.dirname(indexPath);
  const shardNames = [...new Set(Object.values(weightMap))].sort();
  const files: SafetensorsFile[] = [];
  for (const shard of shardNames) {
    const shardPath = path.join(dir, shard);
    if (!fs.existsSync(shardPath)) throw new Error(`${indexPath}: shard "${shard}" is missing (expected ${shardPath})`);
    files.push(SafetensorsFile.open(shardPath));
  }
  const store = WeightStore.fromFiles(indexPath, files);
  for (const [name, shard] of Object.entries(weightMap)) {
    if (!store.has(name)) throw new Error(`${indexPath}: tensor "${name}" is listed for shard "${shard}" but not found in it`);
    const actual = path.basename(store.get(name).file.path);
    if (actual !== shard) throw new Error(`${indexPath}: tensor "${name}" is listed for "${shard}" but found in "${actual}"`);
  }
  return store;
}

/**
 * Finds a component's weights in a folder: `<base>[.<variant>].safetensors` or its sharded index
 * `<base>[.<variant>].safetensors.index.json`. With no variant given, the plain name wins, then fp32-free variants
 * in the order fp16, bf16 (released repos sometimes ship only a variant).
 */
export function findWeights(dir: string, baseNames: readonly string[], variant?: string): string {
  const variants = variant ? [variant] : ['', 'fp16', 'bf16'];
  const tried: string[] = [];
  for (const v of variants) {
    for (const base of baseNames) {
      const stem = v ? `${base}.${v}` : base;
      for (const candidate of [`${stem}.safetensors`, `${stem}.safetensors.index.json`]) {
        tried.push(candidate);
        const p = path.join(dir, candidate);
        if (fs.existsSync(p)) return p;
      }
    }
  }
  throw new Error(`${dir}: no weights found (looked for ${tried.join(', ')})`);
}
