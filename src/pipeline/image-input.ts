// Images given to a pipeline (image-to-image starts, inpainting masks, ControlNet control images) from PNG bytes,
// as diffusers' image processor takes a PIL image: 8-bit values / 255 in float32, planar [1, C, H, W]. Alpha is
// dropped (a PIL RGB conversion); a mask is the mean of its channels (white = repaint).

import { HostTensor } from '../io/host-tensor.js';
import { decodePng } from '../io/png.js';
import { RequestError } from './request.js';

function decode(bytes: Buffer, what: string) {
  try {
    return decodePng(bytes);
  } catch (e) {
    throw new RequestError(`${what} is not a readable PNG image (${(e as Error).message})`);
  }
}

/** An RGB image [1, 3, H, W] in [0, 1]. */
export function imageTensorFromPng(bytes: Buffer, what: string): HostTensor<'float32'> {
  const png = decode(bytes, what);
  const plane = png.width * png.height;
  const data = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) data[c * plane + p] = Math.fround(png.rgb[p * 3 + c] / 255);
  return HostTensor.float32([1, 3, png.height, png.width], data); // [1, 3, H, W]
}

/** A mask [1, 1, H, W] in [0, 1]: the mean of the channels, 1 (white) = repaint. */
export function maskTensorFromPng(bytes: Buffer, what: string): HostTensor<'float32'> {
  const png = decode(bytes, what);
  const plane = png.width * png.height;
  const data = new Float32Array(plane);
  for (let p = 0; p < plane; p++) data[p] = Math.fround((png.rgb[p * 3] + png.rgb[p * 3 + 1] + png.rgb[p * 3 + 2]) / (3 * 255));
  return HostTensor.float32([1, 1, png.height, png.width], data); // [1, 1, H, W]
}
