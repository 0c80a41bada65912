// The DC-AE halves as runnable components: `vae-encode` (image -> latent) and `vae-decode` (latent -> sample),
// tensor names as in ../shared/fixtures/README.md. ref: SANA.md §3

import { HostTensor } from '../../io/host-tensor.js';
import { ComponentLoader, ComponentRunner } from '../component.js';
import { DcaeLoadOptions, loadDcae } from './model.js';

function expectOnly(kind: string, inputs: Record<string, HostTensor>, name: string): HostTensor {
  const extra = Object.keys(inputs).filter((k) => k !== name);
  if (extra.length) throw new Error(`${kind}: unexpected input(s) ${extra.join(', ')} (takes only "${name}")`);
  const t = inputs[name];
  if (!t) throw new Error(`${kind}: missing input "${name}"`);
  return t;
}

/** `vae-encode`: `image` [B, 3, H, W] in [-1, 1] -> `latent` [B, C, H/32, W/32], NOT multiplied by scaling_factor. */
export const loadVaeEncode: ComponentLoader = async (dir, options = {}): Promise<ComponentRunner> => {
  const vae = await loadDcae(dir, { ...(options as DcaeLoadOptions), parts: ['encoder'] });
  return {
    kind: 'vae-encode',
    inputNames: ['image'],
    run: async (inputs) => ({ latent: await vae.encode(expectOnly('vae-encode', inputs, 'image')) }),
    release: () => vae.release(),
  };
};

/** `vae-decode`: `latent` [B, C, h, w] (unscaled) -> `sample` [B, 3, 32h, 32w], not clamped. */
export const loadVaeDecode: ComponentLoader = async (dir, options = {}): Promise<ComponentRunner> => {
  const vae = await loadDcae(dir, { ...(options as DcaeLoadOptions), parts: ['decoder'] });
  return {
    kind: 'vae-decode',
    inputNames: ['latent'],
    run: async (inputs) => ({ sample: await vae.decode(expectOnly('vae-decode', inputs, 'latent')) }),
    release: () => vae.release(),
  };
};
