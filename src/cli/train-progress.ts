// The trainers' progress on a terminal: a live bar with step, loss (smoothed), samples/s and ETA; plain lines every
// few seconds when the output is not a terminal; nothing but stages with --quiet.

import { formatSeconds } from './progress.js';
import { StepStats, TrainProgress } from '../train/progress.js';

export function createTrainProgress(stream: NodeJS.WriteStream, quiet: boolean): TrainProgress & { done(): void } {
  const live = Boolean(stream.isTTY) && !quiet;
  let smoothed = NaN;
  let rate = NaN;
  let lastLine = 0;
  let barShown = false;
  let first: { step: number; time: number } | undefined;
  const clear = () => {
    if (barShown) stream.write('\r\x1b[K');
    barShown = false;
  };
  return {
    stage(text) {
      clear();
      stream.write(`${text}\n`);
    },
    step(step: number, total: number, s: StepStats) {
      const now = performance.now();
      first ??= { step: step - 1, time: now };
      smoothed = Number.isNaN(smoothed) ? s.loss : 0.95 * smoothed + 0.05 * s.loss;
      rate = Number.isNaN(rate) ? s.samplesPerS : 0.9 * rate + 0.1 * s.samplesPerS;
      const perStep = (now - first.time) / 1000 / Math.max(1, step - first.step);
      const eta = formatSeconds(perStep * (total - step));
      const text = `step ${step}/${total}  loss ${smoothed.toPrecision(4)}  ${rate.toFixed(1)} samples/s  lr ${s.lr.toExponential(2)}  ETA ${eta}`;
      if (quiet) return;
      if (live) {
        const width = 24;
        const filled = Math.round((step / total) * width);
        stream.write(`\r\x1b[K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`);
        barShown = true;
      } else if (now - lastLine > 5000 || step === total) {
        stream.write(`${text}\n`);
        lastLine = now;
      }
    },
    done() {
      clear();
    },
  };
}
