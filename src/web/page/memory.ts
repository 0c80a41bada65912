// The page's memory while it generates: the JavaScript heap as Chrome reports it (performance.memory, sampled).
// onnxruntime-web's wasm heap and GPU buffers are outside it and not exposed to the page; the browser test reads the
// processes' peak resident sizes instead (test/helpers/process-memory.ts). ref: docs/browser.md "What it does"

export interface MemoryPeak {
  /** Peak used JavaScript heap, bytes (undefined where the browser does not say). */
  jsHeap?: number;
}

function jsHeapNow(): number | undefined {
  return (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize;
}

/** Starts sampling; the returned function stops and gives the peak. */
export function sampleMemory(everyMs = 100): () => MemoryPeak {
  const peak: MemoryPeak = {};
  const sample = () => {
    const js = jsHeapNow();
    if (js !== undefined) peak.jsHeap = Math.max(peak.jsHeap ?? 0, js);
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
  return p.jsHeap !== undefined ? `JavaScript heap peak ${(p.jsHeap / 2 ** 20).toFixed(0)} MiB (wasm and GPU memory not included)` : 'JavaScript heap: not reported by this browser';
}
