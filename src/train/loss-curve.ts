// The training curves a run leaves next to its metrics.csv: the loss per step with its moving average (log
// scale), and a validation series (e.g. PSNR) when the run logged one.

import { MetricsLog } from './metrics-log.js';
import { movingAverage, writeCurvesPng } from './plot.js';

/** The loss curve (raw and smoothed) and an optional validation series as a PNG. */
export function writeLossCurve(log: MetricsLog, file: string, title: string, validationColumn?: string, validationName?: string): void {
  const loss = log.points('loss');
  if (!loss.length) return;
  const series = [
    { name: 'loss', points: loss, color: '#9ecae1' },
    { name: `loss (mean of ${Math.min(50, loss.length)})`, points: movingAverage(loss, Math.min(50, loss.length)), color: '#1f77b4' },
  ];
  writeCurvesPng(file, series, { title, xLabel: 'step', yLabel: 'loss', logY: true });
  if (validationColumn && validationName) {
    const val = log.points(validationColumn);
    if (val.length) {
      writeCurvesPng(file.replace(/\.png$/, `-${validationColumn}.png`), [{ name: validationName, points: val, color: '#d62728', markers: true }], {
        title: validationName,
        xLabel: 'step',
        yLabel: validationName,
      });
    }
  }
}
