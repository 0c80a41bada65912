// PNG encoding (pngjs) with metadata in iTXt chunks (UTF-8, so any prompt survives), and decoding for tests and
// image inputs. Files are written atomically.

import * as zlib from 'node:zlib';
import pngjs from 'pngjs';
import { writeBytesAtomic } from './atomic-write.js';

const { PNG } = pngjs;

export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** Interleaved 8-bit RGB, row-major. */
  readonly rgb: Uint8Array;
}

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), body])) >>> 0, 0);
  return Buffer.concat([head, body, crc]);
}

function itxt(keyword: string, text: string): Buffer {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) throw new Error(`PNG text keyword "${keyword}" must be 1-79 printable ASCII characters`);
  return chunk('iTXt', Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(text, 'utf8')]));
}

export function encodePng(image: RgbImage, text: Readonly<Record<string, string>> = {}): Buffer {
  const { width, height, rgb } = image;
  if (rgb.length !== width * height * 3) throw new Error(`PNG: ${width}x${height} RGB needs ${width * height * 3} bytes, got ${rgb.length}`);
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  const encoded = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
  const ihdrEnd = 8 + 8 + 13 + 4; // signature + IHDR chunk
  const chunks = Object.entries(text).map(([k, v]) => itxt(k, v));
  return Buffer.concat([encoded.subarray(0, ihdrEnd), ...chunks, encoded.subarray(ihdrEnd)]);
}

export function writePng(file: string, image: RgbImage, text: Readonly<Record<string, string>> = {}): void {
  writeBytesAtomic(file, encodePng(image, text));
}

export interface DecodedPng extends RgbImage {
  readonly text: Record<string, string>;
}

export function decodePng(bytes: Buffer): DecodedPng {
  const png = PNG.sync.read(bytes);
  const rgb = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; i < png.data.length; i += 4, j += 3) {
    rgb[j] = png.data[i];
    rgb[j + 1] = png.data[i + 1];
    rgb[j + 2] = png.data[i + 2];
  }
  return { width: png.width, height: png.height, rgb, text: readTextChunks(bytes) };
}

export function readTextChunks(bytes: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 8;
  while (pos + 8 <= bytes.length) {
    const len = bytes.readUInt32BE(pos);
    const type = bytes.toString('latin1', pos + 4, pos + 8);
    const body = bytes.subarray(pos + 8, pos + 8 + len);
    if (type === 'iTXt' || type === 'tEXt') {
      const nul = body.indexOf(0);
      const key = body.toString('latin1', 0, nul);
      if (type === 'tEXt') out[key] = body.toString('latin1', nul + 1);
      else {
        // keyword \0 compression-flag method language \0 translated \0 text
        let p = nul + 3;
        p = body.indexOf(0, p) + 1;
        p = body.indexOf(0, p) + 1;
        out[key] = body.toString('utf8', p);
      }
    }
    pos += 12 + len;
  }
  return out;
}
