// Several same-size images side by side in rows of `columns`, as one PNG: validation images of the trainers and the
// evaluation grid.

import { RgbImage, writePng } from '../io/png.js';

export function writeImageGrid(file: string, images: readonly RgbImage[], columns = images.length): void {
  if (!images.length) throw new Error(`${file}: no images for the grid`);
  const { width, height } = images[0];
  const rows = Math.ceil(images.length / columns);
  const rgb = new Uint8Array(columns * width * rows * height * 3);
  images.forEach((im, k) => {
    if (im.width !== width || im.height !== height) throw new Error(`${file}: image ${k} is ${im.width} x ${im.height}, not ${width} x ${height}`);
    const ox = (k % columns) * width;
    const oy = Math.floor(k / columns) * height;
    for (let y = 0; y < height; y++) rgb.set(im.rgb.subarray(y * width * 3, (y + 1) * width * 3), ((oy + y) * columns * width + ox) * 3);
  });
  writePng(file, { width: columns * width, height: rows * height, rgb });
}
