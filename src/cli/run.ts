// `sana run <component>`: runs one model component from a diffusers/transformers folder on the named tensors of a
// safetensors file and writes the named outputs to another.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { HostTensor } from '../io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { COMPONENT_NAMES, componentLoader, isComponentName } from '../models/registry.js';
import { DcaeLoadOptions } from '../models/dcae/model.js';
import { UsageError } from './errors.js';
import { parseTilingFlags } from './tiling-flags.js';
import { DEVICE_HELP, deviceFromFlag } from './device-flag.js';
import { parsePositiveInt, parseThreads } from './arg-values.js';

export const RUN_HELP = `Usage: sana run <component> --component DIR --inputs IN.safetensors --output OUT.safetensors [options]

Runs one model component on named tensors and writes the named outputs.

Components and their tensors:
  transformer    in: hidden_states [B,C,H,W] f32, encoder_hidden_states [B,T,caption_channels] f32,
                     encoder_attention_mask [B,T] i64, timestep [B] f32, guidance [B] f32 (guidance models only)
                 out: sample [B,C,H,W]
  vae-encode     in: image [B,3,H,W] in [-1,1]         out: latent [B,latent_channels,H/32,W/32] (unscaled)
  vae-decode     in: latent [B,latent_channels,h,w]     out: sample [B,3,32h,32w]
  text-encoder   in: input_ids [B,T] i64, attention_mask [B,T] i64    out: last_hidden_state [B,T,hidden]

Options:
  --component DIR     component folder (config.json + weights), e.g. model/transformer
  --inputs FILE       safetensors file with the input tensors
  --output FILE       safetensors file to write (written atomically)
  --threads N         CPU threads (default: all cores)
  ${DEVICE_HELP.replace('                 ', '          ')}
  --variant NAME      weight variant to prefer: fp16 or bf16 (default: plain file first)
  --tile N            vae-encode / vae-decode: run in N x N pixel tiles blended as diffusers does (bounded memory
                      for large images; N a multiple of 32)
  --tile-stride S     distance between tiles in pixels (default: 7/8 of the tile, e.g. 448 for 512)
  -h, --help          show this help
`;

export async function runCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      component: { type: 'string' },
      inputs: { type: 'string' },
      output: { type: 'string' },
      threads: { type: 'string' },
      device: { type: 'string' },
      variant: { type: 'string' },
      tile: { type: 'string' },
      'tile-stride': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return;
  }
  const [name, ...extra] = positionals;
  if (!name) throw new UsageError(`name a component (${COMPONENT_NAMES.join(', ')}); see sana run --help`);
  if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (!isComponentName(name)) throw new UsageError(`unknown component "${name}" (expected one of ${COMPONENT_NAMES.join(', ')})`);
  const dir = requireOption(values.component, '--component DIR');
  const inputsFile = requireOption(values.inputs, '--inputs IN.safetensors');
  const outputFile = requireOption(values.output, '--output OUT.safetensors');
  const threads = parseThreads(values.threads);
  const tiling = parseTilingFlags(values.tile, values['tile-stride'], '--tile', '--tile-stride');
  if (tiling && name !== 'vae-encode' && name !== 'vae-decode') throw new UsageError(`--tile applies to vae-encode and vae-decode, not ${name}`);

  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`--component: ${dir} is not a folder`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) throw new UsageError(`--component: ${dir} has no config.json`);
  if (!fs.existsSync(inputsFile)) throw new UsageError(`--inputs: ${inputsFile} does not exist`);
  const outDir = path.dirname(path.resolve(outputFile));
  if (!fs.existsSync(outDir)) throw new UsageError(`--output: folder ${outDir} does not exist`);

  const loader = componentLoader(name);

  const inputs = Object.fromEntries(readSafetensors(inputsFile)) as Record<string, HostTensor>;
  const device = await deviceFromFlag(values.device, (m) => process.stderr.write(`${m}\n`));
  const options: DcaeLoadOptions = { threads, variant: values.variant, tiling, device };
  const runner = await loader(dir, options);
  try {
    const missing = runner.inputNames.filter((n) => !(n in inputs));
    if (missing.length) {
      throw new UsageError(
        `--inputs: ${inputsFile} lacks ${missing.map((m) => `"${m}"`).join(', ')} (component ${name} takes ${runner.inputNames.join(', ')})`,
      );
    }
    const known = new Set([...runner.inputNames, ...(runner.optionalInputNames ?? [])]);
    const feeds = Object.fromEntries(Object.entries(inputs).filter(([k]) => known.has(k)));
    const outputs = await runner.run(feeds);
    writeSafetensors(outputFile, outputs);
  } finally {
    await runner.release();
  }
}

function requireOption(v: string | undefined, what: string): string {
  if (!v) throw new UsageError(`missing ${what}`);
  return v;
}

