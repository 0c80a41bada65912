// How well an autoencoder reproduces images: PSNR of decode(encode(x)) against x, both mapped to [0, 1] (the
// reconstruction clamped as the pipeline clamps its output). The trainer's validation and the default model's
// evaluation measure it the same way.

import { HostTensor } from '../io/host-tensor.js';
import { Dcae } from '../models/dcae/model.js';

export interface Reconstructions {
  /** dB, over every pixel of every image. */
  readonly psnr: number;
  /** [3, size, size] in [-1, 1] (not clamped), one per image. */
  readonly images: readonly Float32Array[];
}

/** `images`: [3, size, size] planes in [-1, 1]. */
export async function reconstruct(dcae: Dcae, images: readonly Float32Array[], size: number): Promise<Reconstructions> {
  let se = 0;
  let n = 0;
  const out: Float32Array[] = [];
  for (const x of images) {
    const y = (await dcae.decode(await dcae.encode(HostTensor.float32([1, 3, size, size], x)))).data as Float32Array;
    for (let k = 0; k < x.length; k++) se += ((Math.min(1, Math.max(-1, y[k])) - x[k]) / 2) ** 2;
    n += x.length;
    out.push(y);
  }
  return { psnr: 10 * Math.log10(n / se), images: out };
}
