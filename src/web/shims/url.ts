// `node:url` in the page: module paths (import.meta.url) are http URLs there; their path part stands in for the
// file path (only used to locate Node-side folders such as models/default, which the page fetches instead).

export function fileURLToPath(url: string | URL): string {
  return new URL(String(url)).pathname;
}
export function pathToFileURL(p: string): URL {
  return new URL(`file://${p}`);
}
export default { fileURLToPath, pathToFileURL };
