// Peak resident memory (VmHWM) of this process's descendants, grouped by Chromium process type, read from /proc:
// how the browser test states the local page's peak memory (the renderer holds the page's JavaScript and the wasm
// heap; the GPU process holds SwiftShader's buffers).

import * as fs from 'node:fs';

export interface ProcessPeak {
  readonly pid: number;
  /** Chromium's --type= (renderer, gpu-process, utility, zygote) or "browser". */
  readonly type: string;
  readonly peakBytes: number;
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every living descendant of `root` (default: this process) with its peak resident size. */
export function descendantPeaks(root = process.pid): ProcessPeak[] {
  const parent = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProc(Number(name), 'stat');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ')'
    if (stat) parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  }
  const isDescendant = (pid: number) => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === root) return true;
    return false;
  };
  const peaks: ProcessPeak[] = [];
  for (const pid of parent.keys()) {
    if (!isDescendant(pid)) continue;
    const status = readProc(pid, 'status');
    const hwm = status?.match(/^VmHWM:\s+(\d+) kB/m);
    if (!hwm) continue;
    const cmdline = readProc(pid, 'cmdline') ?? '';
    const type = cmdline.match(/--type=([a-z-]+)/)?.[1] ?? (cmdline.includes('chromium') ? 'browser' : 'other');
    peaks.push({ pid, type, peakBytes: Number(hwm[1]) * 1024 });
  }
  return peaks;
}
