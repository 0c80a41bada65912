// Training checkpoints: a folder with the model in diffusers layout (loadable as it is) plus the optimizer state,
// so `--resume` continues exactly where training stopped:
//   <dir>/<component>/config.json + diffusion_pytorch_model.safetensors   (EMA weights when kept, else the weights)
//   <dir>/training_state.safetensors   param.<key>, adam_m.<key>, adam_v.<key>, ema.<key>; metadata: step, EMA decay
// The folder is written under a temporary name and renamed, so a checkpoint is complete or absent.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomic } from '../io/atomic-write.js';
import { HostTensor } from '../io/host-tensor.js';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.js';
import { AdamW, AdamWOptions, WeightEma } from './optimizer.js';
import { writeDiffusersComponent } from './initialize.js';

export const STATE_FILE = 'training_state.safetensors';

export interface CheckpointContents {
  readonly step: number;
  /** Component folder name inside the checkpoint ("vae", "transformer"). */
  readonly component: string;
  readonly config: Record<string, unknown>;
  /** Parameter shapes by key (the checkpoint shapes). */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly values: ReadonlyMap<string, Float32Array>;
  readonly optimizer: AdamW;
  readonly ema?: WeightEma;
  /** Other component folders copied in (a pipeline checkpoint: vae, text_encoder, tokenizer, scheduler). */
  readonly copyFolders?: Readonly<Record<string, string>>;
  /** Extra files written at the checkpoint's root (model_index.json). */
  readonly files?: Readonly<Record<string, string>>;
  /**
   * Writes the shipped weights (EMA when kept) into the checkpoint folder; default: a diffusers component folder
   * `<component>/` with `config`. A LoRA checkpoint writes its adapter file instead.
   */
  readonly writeModel?: (dir: string, weights: ReadonlyMap<string, Float32Array>) => void;
}

const tensor = (shape: readonly number[], data: Float32Array) => HostTensor.float32(shape, data);

export function saveCheckpoint(dir: string, c: CheckpointContents): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const shapeOf = (key: string) => {
    const s = c.shapes.get(key);
    if (!s) throw new Error(`checkpoint: no shape for ${key}`);
    return s;
  };
  const source = c.ema?.shadow ?? c.values;
  if (c.writeModel) {
    fs.mkdirSync(tmp, { recursive: true });
    c.writeModel(tmp, source);
  } else {
    const modelWeights = new Map<string, HostTensor>();
    for (const [key, v] of source) modelWeights.set(key, tensor(shapeOf(key), v));
    writeDiffusersComponent(path.join(tmp, c.component), c.config, modelWeights);
  }
  const state = new Map<string, HostTensor>();
  for (const [key, v] of c.values) state.set(`param.${key}`, tensor(shapeOf(key), v));
  for (const [key, s] of c.optimizer.state) {
    state.set(`adam_m.${key}`, tensor(shapeOf(key), s.m));
    state.set(`adam_v.${key}`, tensor(shapeOf(key), s.v));
  }
  if (c.ema) for (const [key, v] of c.ema.shadow) state.set(`ema.${key}`, tensor(shapeOf(key), v));
  const meta: Record<string, string> = {
    step: String(c.step),
    adam_step: String(c.optimizer.step),
    adam: JSON.stringify(c.optimizer.options),
    component: c.component,
  };
  if (c.ema) meta.ema_decay = String(c.ema.decay);
  writeSafetensors(path.join(tmp, STATE_FILE), state, meta);
  for (const [name, src] of Object.entries(c.copyFolders ?? {})) {
    fs.cpSync(src, path.join(tmp, name), { recursive: true, filter: (f) => !f.includes(`${path.sep}.sana-ts-cache`) });
  }
  for (const [name, text] of Object.entries(c.files ?? {})) writeBytesAtomic(path.join(tmp, name), text);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
}

export interface LoadedCheckpoint {
  readonly step: number;
  readonly values: Map<string, Float32Array>;
  readonly optimizer: AdamW;
  readonly ema?: WeightEma;
  /** The model folder inside the checkpoint. */
  readonly componentDir: string;
}

export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const file = path.join(dir, STATE_FILE);
  if (!fs.existsSync(file)) throw new Error(`checkpoint ${dir}: no ${STATE_FILE} (not a training checkpoint)`);
  const stateFile = SafetensorsFile.open(file);
  const metadata = stateFile.metadata;
  const step = Number(metadata.step);
  const component = metadata.component;
  if (!Number.isInteger(step) || step < 0 || !component) throw new Error(`${file}: metadata needs step and component`);
  const options = JSON.parse(metadata.adam ?? 'null') as AdamWOptions | null;
  if (!options) throw new Error(`${file}: no optimizer settings in the metadata`);
  const optimizer = new AdamW(options);
  optimizer.step = Number(metadata.adam_step);
  const values = new Map<string, Float32Array>();
  const emaValues = new Map<string, Float32Array>();
  for (const name of stateFile.tensors.keys()) {
    const t = stateFile.read(name);
    const dot = name.indexOf('.');
    const kind = name.slice(0, dot);
    const key = name.slice(dot + 1);
    const data = Float32Array.from(t.toFloat32());
    if (kind === 'param') values.set(key, data);
    else if (kind === 'ema') emaValues.set(key, data);
    else if (kind === 'adam_m' || kind === 'adam_v') {
      const s = optimizer.state.get(key) ?? { m: new Float32Array(data.length), v: new Float32Array(data.length) };
      (kind === 'adam_m' ? s.m : s.v).set(data);
      optimizer.state.set(key, s);
    } else throw new Error(`${file}: unexpected tensor ${name}`);
  }
  let ema: WeightEma | undefined;
  if (metadata.ema_decay !== undefined) {
    ema = new WeightEma(Number(metadata.ema_decay), values);
    for (const [key, v] of emaValues) ema.shadow.get(key)?.set(v);
  }
  return { step, values, optimizer, ema, componentDir: path.join(dir, component) };
}
