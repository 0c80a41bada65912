// The flags that say how models are loaded, shared by every command that loads a pipeline (`sana generate`,
// `sana serve`, `sana worker`): their parseArgs spec and one reading of them into the pipeline's load options.
// ref: README "Server"; src/pipeline/components.ts (LoadPipelineOptions)

import { parseLoraArg } from '../nn/lora.js';
import { LoadPipelineOptions } from '../pipeline/components.js';
import { parseThreads } from './arg-values.js';
import { deviceFromFlag, precisionFromFlag } from './device-flag.js';
import { UsageError } from './errors.js';
import { parseTilingFlags } from './tiling-flags.js';

export const MODEL_LOAD_FLAGS = {
  'text-quantization': { type: 'string' },
  'transformer-quantization': { type: 'string' },
  'vae-tiling': { type: 'boolean' },
  'vae-tile-size': { type: 'string' },
  'vae-tile-stride': { type: 'string' },
  threads: { type: 'string' },
  device: { type: 'string' },
  precision: { type: 'string' },
  lora: { type: 'string', multiple: true },
  'lora-fuse': { type: 'boolean' },
} as const;

export interface ModelLoadFlagValues {
  'text-quantization'?: string;
  'transformer-quantization'?: string;
  'vae-tiling'?: boolean;
  'vae-tile-size'?: string;
  'vae-tile-stride'?: string;
  threads?: string;
  device?: string;
  precision?: string;
  lora?: string[];
  'lora-fuse'?: boolean;
}

/**
 * The load options the flags ask for; bad values are UsageErrors naming the flag. The device is probed here, and
 * `notify` hears its notices (a fallback to the CPU).
 */
export async function modelLoadFromFlags(
  v: ModelLoadFlagValues,
  notify: (message: string) => void = (m) => process.stderr.write(`${m}\n`),
): Promise<LoadPipelineOptions> {
  const textQuantization = v['text-quantization'] ?? 'none';
  if (textQuantization !== 'none' && textQuantization !== 'int8' && textQuantization !== 'int4') {
    throw new UsageError(`--text-quantization: expected none, int8 or int4, got "${textQuantization}"`);
  }
  const transformerQuantization = v['transformer-quantization'] ?? 'none';
  if (transformerQuantization !== 'none' && transformerQuantization !== 'int8') {
    throw new UsageError(`--transformer-quantization: expected none or int8, got "${transformerQuantization}"`);
  }
  const vaeTiles = parseTilingFlags(v['vae-tile-size'], v['vae-tile-stride'], '--vae-tile-size', '--vae-tile-stride');
  const threads = parseThreads(v.threads);
  const device = await deviceFromFlag(v.device, notify);
  const transformerPrecision = await precisionFromFlag(v.precision, device, notify);
  return {
    threads,
    device,
    textQuantization,
    transformerQuantization,
    transformerPrecision,
    vaeTiling: vaeTiles ?? (v['vae-tiling'] ? true : undefined),
    loras: v.lora?.map(parseLoraArg),
    loraFuse: v['lora-fuse'],
  };
}
