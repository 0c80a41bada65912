// A model's weights as one name -> location map, whether the checkpoint is one safetensors file or shards listed
// by a `*.safetensors.index.json`. Only headers are read here; bytes are read lazily or bound by ONNX Runtime.

import * as fs from 'node:fs';
import { parseLenientJson } from './lenient-json.js';
import * as path from 'node:path';
import { HostTensor } from './host-tensor.js';
import { containedFile, containedPath } from './contained-path.js';
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
          throw new WeightsError(`${source}: tensor "${info.name}" is in both ${prior.file.path} and ${file.path}`);
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
    if (!loc) throw new WeightsError(`${this.source}: no tensor named "${name}"`);
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

export class WeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsError';
  }
}

/** Largest shard index we read (real ones are well under 1 MB, even for models with thousands of tensors). */
const MAX_INDEX_BYTES = 64 << 20;

function readIndex(indexPath: string): Record<string, unknown> {
  containedFile(indexPath);
  let value: unknown;
  try {
    const size = fs.statSync(indexPath).size;
    if (size > MAX_INDEX_BYTES) throw new Error(`${size} bytes, more than the ${MAX_INDEX_BYTES} a shard index may have`);
    // the lenient reader every JSON file of a model goes through (the path is named once, below)
    value = parseLenientJson(fs.readFileSync(indexPath, 'utf8'), 'shard index');
  } catch (e) {
    throw new WeightsError(`${indexPath}: cannot read shard index: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new WeightsError(`${indexPath}: a shard index must be a JSON object`);
  return value as Record<string, unknown>;
}

function openSharded(indexPath: string): WeightStore {
  const index = readIndex(indexPath);
  const weightMap = index.weight_map;
  if (!weightMap || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new WeightsError(`${indexPath}: shard index has no "weight_map" object`);
  }
  const dir = path.dirname(indexPath);
  // every shard a tensor names must be a file name inside the index's folder (checked before anything is opened)
  const shardPaths = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    const key = `"weight_map" entry ${JSON.stringify(name)}`;
    if (typeof shard !== 'string') {
      throw new WeightsError(`${indexPath}: ${key} must name a shard file (a string), got ${shard === null ? 'null' : Array.isArray(shard) ? 'a list' : typeof shard}`);
    }
    if (!shardPaths.has(shard)) shardPaths.set(shard, containedPath(dir, shard, { file: indexPath, key }, { kind: 'file' }));
  }
  const files: SafetensorsFile[] = [];
  for (const shard of [...shardPaths.keys()].sort()) {
    const shardPath = shardPaths.get(shard)!;
    if (!fs.existsSync(shardPath)) throw new WeightsError(`${indexPath}: shard "${shard}" is missing (expected ${shardPath})`);
    files.push(SafetensorsFile.open(shardPath));
  }
  const store = WeightStore.fromFiles(indexPath, files);
  for (const [name, shard] of Object.entries(weightMap as Record<string, string>)) {
    if (!store.has(name)) throw new WeightsError(`${indexPath}: tensor "${name}" is listed for shard "${shard}" but not found in it`);
    const actual = path.basename(store.get(name).file.path);
    if (store.get(name).file.path !== shardPaths.get(shard)) throw new WeightsError(`${indexPath}: tensor "${name}" is listed for "${shard}" but found in "${actual}"`);
  }
  return store;
}

/**
 * Finds a component's weights in a folder: `<base>[.<variant>].safetensors` or its sharded index
 * `<base>[.<variant>].safetensors.index.json`. With no variant given, the plain name wins, then fp32-free variants
 * in the order fp16, bf16 (released repos sometimes ship only a variant). The file found must lie inside the folder
 * (or be a Hugging Face cache blob).
 */
export function findWeights(dir: string, baseNames: readonly string[], variant?: string): string {
  const variants = variant ? [variant] : ['', 'fp16', 'bf16'];
  const tried: string[] = [];
  for (const v of variants) {
    for (const base of baseNames) {
      const stem = v ? `${base}.${v}` : base;
      for (const candidate of [`${stem}.safetensors`, `${stem}.safetensors.index.json`]) {
        tried.push(candidate);
        const p = containedPath(dir, candidate, { file: dir }, { kind: 'file' });
        if (fs.existsSync(p)) return p;
      }
    }
  }
  throw new WeightsError(`${dir}: no weights found (looked for ${tried.join(', ')})`);
}
