// Node-only modules the page's bundle reaches but never calls (onnxruntime-node's native addon): any use is a bug
// in the browser build and says so.

function unavailable(what: string): never {
  throw new Error(`${what} is not available in the browser build (src/web/build/bundle.ts maps it to this stub)`);
}
export const InferenceSession = { create: () => unavailable('onnxruntime-node') };
export const Tensor = function () {
  unavailable('onnxruntime-node');
};
export const env = {};
export default { InferenceSession, Tensor, env };
