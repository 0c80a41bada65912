// The flags that say how models are loaded, shared by the commands that load them for many requests (`sana serve`,
// `sana worker`): their parseArgs spec and one reading of them into the pipeline's load options.
// ref: README "Server"; src/pipeline/components.ts (LoadPipelineOptions)

import { parseLoraArg } from '../nn/lora.js';
import { LoadPipelineOptions } from '../pipeline/components.js';
import { parseThreads } from './arg-values.js';
import { deviceFromFlag } from './device-flag.js';
import { UsageError } from './errors.js';
import { parseTilingFlags } from './tiling-flags.js';

export const MODEL_LOAD_FLAGS = {
  'text-quantization': { type: 'string' },
  'vae-tiling': { type: 'boolean' },
  'vae-tile-size': { type: 'string' },
  'vae-tile-stride': { type: 'string' },
  threads: { type: 'string' },
  device: { type: 'string' },
  lora: { type: 'string', multiple: true },
  'lora-fuse': { type: 'boolean' },
} as const;

export interface ModelLoadFlagValues {
  'text-quantization'?: string;
  'vae-tiling'?: boolean;
  'vae-tile-size'?: string;
  'vae-tile-stride'?: string;
  threads?: string;
  device?: string;
  lora?: string[];
  'lora-fuse'?: boolean;
}

/** The load options the flags ask for; bad values are UsageErrors naming the flag, the device is probed here. */
export async function modelLoadFromFlags(v: ModelLoadFlagValues): Promise<LoadPipelineOptions> {
  const textQuantization = v['text-quantization'] ?? 'none';
  if (textQuantization !== 'none' && textQuantization !== 'int8' && textQuantization !== 'int4') {
    throw new UsageError(`--text-quantization: expected none, int8 or int4, got "${textQuantization}"`);
  }
  const vaeTiles = parseTilingFlags(v['vae-tile-size'], v['vae-tile-stride'], '--vae-tile-size', '--vae-tile-stride');
  const threads = parseThreads(v.threads);
  const device = await deviceFromFlag(v.device, (m) => process.stderr.write(`${m}\n`));
  return {
    threads,
    device,
    textQuantization,
    vaeTiling: vaeTiles ?? (v['vae-tiling'] ? true : undefined),
    loras: v.lora?.map(parseLoraArg),
    loraFuse: v['lora-fuse'],
  };
}
