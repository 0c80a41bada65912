// The CPU's feature flags as Linux lists them in /proc/cpuinfo ("avx2 avx512_vnni ..."), read once per process. The
// kernels ONNX Runtime's MLAS picks depend on them: the optimised-model cache keys its folders by them, and the int8
// layers choose how to store their weight codes by them. Empty where the file cannot be read (not Linux).

import * as fs from 'node:fs';

let flagsLine: string | undefined;

/** The first processor's "flags" line, verbatim (cache keys use it as it is); '' where it cannot be read. */
export function cpuFlagsLine(): string {
  if (flagsLine === undefined) {
    try {
      flagsLine = /^flags\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
    } catch {
      flagsLine = '';
    }
  }
  return flagsLine;
}

/** The flags as a set; empty where they cannot be read. */
export function cpuFlags(): ReadonlySet<string> {
  return new Set(cpuFlagsLine().split(/\s+/).filter((f) => f !== ''));
}
