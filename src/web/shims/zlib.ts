// `node:zlib` in the page: src/io/png.ts needs crc32 for its iTXt chunks (pngjs's browser build brings its own
// deflate). crc-32 (SheetJS) computes the same CRC-32 as zlib.

import CRC32 from 'crc-32';

export function crc32(data: Uint8Array): number {
  return CRC32.buf(data) >>> 0;
}
export default { crc32 };
