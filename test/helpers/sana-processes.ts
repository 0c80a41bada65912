// `sana serve` and `sana worker` as separate processes, as users start them: spawned from the built CLI, their
// stderr kept (the workers log one line per ended job), ready once they print their start-up line.

import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot } from './fixtures.js';

export const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export interface SanaProcess {
  readonly child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  readonly log: () => string;
  /** The first match of the start-up line pattern. */
  readonly ready: RegExpMatchArray;
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startSana(args: string[], readyLine: RegExp, timeoutMs = 60_000): Promise<SanaProcess> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SANA_API_KEY: '' } });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stdout!.resume();
  const ready = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sana ${args[0]} not ready after ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = stderr.match(readyLine);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sana ${args[0]} exited (${code}) before it was ready: ${stderr}`));
    });
  });
  return {
    child,
    log: () => stderr,
    ready,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
