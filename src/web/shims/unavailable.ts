// Node-only modules the page's bundle reaches but never calls (onnxruntime-node's native addon, node:crypto's
// session-cache hashes, ...): any use is a bug in the browser build and says so.

function unavailable(what: string): never {
  throw new Error(`${what} is not available in the browser build (src/web/build/bundle.ts maps it to this stub)`);
}
export const InferenceSession = { create: () => unavailable('onnxruntime-node') };
export const Tensor = function () {
  unavailable('onnxruntime-node');
};
export const env = {};
export function createHash(): never {
  return unavailable('node:crypto');
}
export function randomUUID(): string {
  return globalThis.crypto.randomUUID();
}
export default { InferenceSession, Tensor, env, createHash, randomUUID };
