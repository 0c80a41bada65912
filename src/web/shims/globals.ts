// Globals Node code expects, injected into the page's bundle by esbuild: Buffer (safetensors headers, PNG chunks)
// from the `buffer` package, and a minimal `process` (no environment, so every Node-side default applies).

import { Buffer } from 'buffer';

export { Buffer };
export const process = {
  env: {} as Record<string, string | undefined>,
  platform: 'browser',
  cwd: () => '/',
  nextTick: (fn: (...args: unknown[]) => void, ...args: unknown[]) => queueMicrotask(() => fn(...args)),
  versions: {} as Record<string, string>,
};
