// The page's memory while it generates: the JavaScript heap (Chrome's performance.memory, sampled) and the wasm
// memory onnxruntime-web has grown to (its heap never shrinks, so its size at the end is its peak). Browsers without
// these figures show what they have. ref: docs/browser.md "Memory"

import * as ort from 'onnxruntime-web';

export interface MemoryPeak {
  /** Peak used JavaScript heap, bytes (undefined where the browser does not say). */
  jsHeap?: number;
  /** onnxruntime-web's wasm memory, bytes. */
  wasmHeap?: number;
}

function jsHeapNow(): number | undefined {
  return (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize;
}

function wasmHeapNow(): number | undefined {
  // the wasm module object onnxruntime-web keeps once started; its HEAP8 spans the whole wasm memory
  const mod = (ort.env.wasm as unknown as { wasmModule?: { HEAP8?: Int8Array } }).wasmModule;
  return mod?.HEAP8?.byteLength;
}

/** Starts sampling; the returned function stops and gives the peaks. */
export function sampleMemory(everyMs = 100): () => MemoryPeak {
  const peak: MemoryPeak = {};
  const sample = () => {
    const js = jsHeapNow();
    if (js !== undefined) peak.jsHeap = Math.max(peak.jsHeap ?? 0, js);
    const wasm = wasmHeapNow();
    if (wasm !== undefined) peak.wasmHeap = Math.max(peak.wasmHeap ?? 0, wasm);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}

export function memoryText(p: MemoryPeak): string {
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const parts = [p.jsHeap !== undefined ? `JavaScript heap peak ${mb(p.jsHeap)}` : 'JavaScript heap: not reported by this browser'];
  if (p.wasmHeap !== undefined) parts.push(`wasm memory ${mb(p.wasmHeap)}`);
  return parts.join(', ');
}
