// Progress for long runs: a live bar on a terminal, plain lines otherwise, nothing with --quiet.

export interface ProgressSink {
  stage(text: string): void;
  /** `done` of `total` units (denoising steps, decode tiles); `elapsed` = seconds over the units so far. */
  step(done: number, total: number, seconds: number, elapsed: number, unit?: 'step' | 'tile'): void;
  warn(text: string): void;
  done(): void;
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

export function createProgress(stream: NodeJS.WriteStream, quiet: boolean): ProgressSink {
  if (quiet) return { stage() {}, step() {}, warn: (t) => stream.write(`warning: ${t}\n`), done() {} };
  const live = Boolean(stream.isTTY);
  let barShown = false;
  const clearBar = () => {
    if (barShown) stream.write('\r\x1b[K');
    barShown = false;
  };
  return {
    stage(text) {
      clearBar();
      stream.write(`${text}\n`);
    },
    step(done, total, seconds, elapsed, unit = 'step') {
      const perUnit = elapsed / done;
      const eta = perUnit * (total - done);
      const text = `${unit} ${done}/${total}  ${perUnit.toFixed(2)} s/${unit}  ETA ${formatSeconds(eta)}`;
      if (live) {
        const width = 24;
        const filled = Math.round((done / total) * width);
        stream.write(`\r\x1b[K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`);
        barShown = true;
        if (done === total) clearBar();
      } else {
        stream.write(`${text} (this ${unit} ${seconds.toFixed(2)} s)\n`);
      }
    },
    warn(text) {
      clearBar();
      stream.write(`warning: ${text}\n`);
    },
    done() {
      clearBar();
    },
  };
}
