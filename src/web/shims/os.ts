// `node:os` in the page: the few calls the library makes (thread count, a home folder for cache paths that the
// page never writes to).

export function availableParallelism(): number {
  return globalThis.navigator?.hardwareConcurrency ?? 1;
}
export function cpus(): unknown[] {
  return new Array(availableParallelism()).fill({});
}
export function homedir(): string {
  return '/home';
}
export function tmpdir(): string {
  return '/tmp';
}
/** navigator.deviceMemory (GiB, Chromium; rounded down, at most 8) or 4 GiB: the wasm heap's limit. */
export function totalmem(): number {
  const gib = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory ?? 4;
  return gib * 2 ** 30;
}
/** The page cannot see what is free: the whole of totalmem, so a VAE pass too large for it runs in tiles. */
export function freemem(): number {
  return totalmem();
}
export const EOL = '\n';
export default { availableParallelism, cpus, homedir, tmpdir, totalmem, freemem, EOL };
