import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodePng, type RgbImage } from '../src/io/png.js';
import { MetricsLog } from '../src/train/metrics-log.js';
import { movingAverage, plotCurves, writeCurvesPng, type CurvePoint, type PlotOptions } from '../src/train/plot.js';

const COLUMNS = ['step', 'loss', 'lr', 'grad_norm', 'samples_per_s', 'wall_s', 'val_loss'];

function tmpFile(name: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sana-train-plot-')), name);
}

function stepRow(step: number) {
  return { step, loss: Math.fround(1 / (step + 3)), lr: 1e-4 * step, grad_norm: Math.fround(0.1 * step + 0.3), samples_per_s: 12.5, wall_s: step * 0.731 };
}

// --- metrics log ---

test('metrics log: rows read back as written, empty cells for values not logged, float32 round-trips', () => {
  const file = tmpFile('metrics.csv');
  const log = MetricsLog.create(file, COLUMNS);
  const f32 = Math.fround(0.1);
  log.append({ step: 1, loss: f32, lr: 3e-5, grad_norm: Math.fround(1.2345678), samples_per_s: 40, wall_s: 1.5 });
  log.append({ step: 2, loss: NaN, lr: 3e-5, val_loss: Math.fround(0.7) });
  log.append({ step: 3, loss: Infinity, wall_s: 123456.789 });

  const text = fs.readFileSync(file, 'utf8');
  assert.equal(text.split('\n')[0], COLUMNS.join(','));
  assert.equal(text.split('\n')[2], '2,NaN,0.00003,,,,0.699999988');
  assert.ok(text.endsWith('\n'));

  const { log: back, warnings } = MetricsLog.open(file, COLUMNS);
  assert.deepEqual(warnings, []);
  const rows = back.rows();
  assert.equal(rows.length, 3);
  assert.equal(Math.fround(rows[0].loss as number), f32);
  assert.equal(Math.fround(rows[0].grad_norm as number), Math.fround(1.2345678));
  assert.equal(rows[0].samples_per_s, 40);
  assert.equal(rows[0].val_loss, undefined);
  assert.ok(Number.isNaN(rows[1].loss));
  assert.equal(Math.fround(rows[1].val_loss as number), Math.fround(0.7));
  assert.equal(rows[1].grad_norm, undefined);
  assert.equal(rows[2].loss, Infinity);
  assert.equal(rows[2].wall_s, 123456.789);
  assert.deepEqual(rows, log.rows());
  assert.deepEqual(back.points('val_loss'), [[2, rows[1].val_loss]]);
  assert.equal(back.lastStep, 3);
});

test('metrics log: resume truncates rows after the checkpoint step and continues the same file', () => {
  const file = tmpFile('metrics.csv');
  const log = MetricsLog.create(file, COLUMNS);
  for (let s = 1; s <= 6; s++) log.append(stepRow(s));
  const firstThree = fs.readFileSync(file, 'utf8').split('\n').slice(0, 4).join('\n') + '\n';

  const { log: resumed } = MetricsLog.open(file, COLUMNS);
  assert.equal(resumed.rows().length, 6);
  assert.throws(() => resumed.append(stepRow(4)), /step 4 does not come after the last logged step 6.*truncateAfter/);
  assert.equal(resumed.truncateAfter(3), 3);
  assert.equal(fs.readFileSync(file, 'utf8'), firstThree, 'kept rows are byte for byte what was there');
  assert.equal(resumed.truncateAfter(10), 0);
  resumed.append(stepRow(4));
  resumed.append(stepRow(5));

  const { log: again } = MetricsLog.open(file);
  assert.deepEqual(again.columns, COLUMNS);
  assert.deepEqual(again.rows().map((r) => r.step), [1, 2, 3, 4, 5]);
  assert.deepEqual(again.rows(), resumed.rows());
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['metrics.csv'], 'no temporary files left');
});

test('metrics log: a header that differs is refused, naming the file and both headers', () => {
  const file = tmpFile('metrics.csv');
  MetricsLog.create(file, ['step', 'loss']);
  assert.throws(
    () => MetricsLog.open(file, ['step', 'loss', 'val_loss']),
    (e: Error) => e.message.includes(file) && e.message.includes('"step,loss"') && e.message.includes('"step,loss,val_loss"'),
  );
  assert.throws(() => MetricsLog.open(tmpFile('missing.csv'), ['step']), /cannot open metrics log .*missing\.csv: ENOENT/);
  assert.throws(() => MetricsLog.create(tmpFile('m.csv'), ['loss']), /must include "step"/);
  assert.throws(() => MetricsLog.create(tmpFile('m.csv'), ['step', 'a,b']), /column name "a,b"/);
  const log = MetricsLog.create(tmpFile('m.csv'), ['step', 'loss']);
  assert.throws(() => log.append({ step: 1, los: 2 }), /no column "los"/);
  assert.throws(() => log.append({ loss: 2 }), /"step" must be a finite number/);
  assert.equal(log.rows().length, 0, 'a refused row is not kept');
});

test('metrics log: a torn last line is cut off with a warning; a damaged middle line is an error', () => {
  const file = tmpFile('metrics.csv');
  const log = MetricsLog.create(file, ['step', 'loss']);
  log.append({ step: 1, loss: 0.5 });
  log.append({ step: 2, loss: 0.25 });
  fs.appendFileSync(file, '3,0.12'); // killed mid-write
  const { log: resumed, warnings } = MetricsLog.open(file, ['step', 'loss']);
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0].includes(file) && warnings[0].includes('"3,0.12"'), warnings[0]);
  assert.deepEqual(resumed.rows().map((r) => r.step), [1, 2]);
  assert.equal(fs.readFileSync(file, 'utf8'), 'step,loss\n1,0.5\n2,0.25\n');
  resumed.append({ step: 3, loss: 0.125 });
  assert.equal(fs.readFileSync(file, 'utf8'), 'step,loss\n1,0.5\n2,0.25\n3,0.125\n');
  assert.deepEqual(MetricsLog.open(file).warnings, []);

  fs.writeFileSync(file, 'step,loss\n1,0.5\n2,x\n3,0.1\n');
  assert.throws(() => MetricsLog.open(file), (e: Error) => e.message.includes(`${file} line 3`) && /"x" is not a number/.test(e.message));
  fs.writeFileSync(file, 'step,loss\n1,0.5,7\n');
  assert.throws(() => MetricsLog.open(file), /line 2: 3 cells, but the header has 2 columns/);
  fs.writeFileSync(file, 'step,lo');
  assert.throws(() => MetricsLog.open(file), /no complete header line/);
});

// --- plot ---

const RED = '#ff0000';

function isRed(img: RgbImage, x: number, y: number): boolean {
  const i = (y * img.width + x) * 3;
  return img.rgb[i] > 200 && img.rgb[i + 1] < 90 && img.rgb[i + 2] < 90;
}

function isDark(img: RgbImage, x: number, y: number): boolean {
  const i = (y * img.width + x) * 3;
  return img.rgb[i] < 100 && img.rgb[i + 1] < 100 && img.rgb[i + 2] < 100;
}

function count(img: RgbImage, pred: (img: RgbImage, x: number, y: number) => boolean, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(img.height, Math.ceil(y1)); y++) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(img.width, Math.ceil(x1)); x++) if (pred(img, x, y)) n++;
  }
  return n;
}

function redBox(img: RgbImage) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (!isRed(img, x, y)) continue;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  assert.ok(x1 >= x0, 'the series is drawn');
  return { x0, y0, x1, y1, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

/** The plot frame: the rows and columns that are dark across more than half the image. */
function frame(img: RgbImage) {
  const rows: number[] = [];
  const cols: number[] = [];
  for (let y = 0; y < img.height; y++) if (count(img, isDark, 0, y, img.width, y + 1) > img.width / 2) rows.push(y);
  for (let x = 0; x < img.width; x++) if (count(img, isDark, x, 0, x + 1, img.height) > img.height / 2) cols.push(x);
  assert.ok(rows.length >= 2 && cols.length >= 2, 'a plot frame');
  return { left: cols[0], right: cols[cols.length - 1], top: rows[0], bottom: rows[rows.length - 1] };
}

function meanRedY(img: RgbImage, x: number): number {
  const ys: number[] = [];
  for (let y = 0; y < img.height; y++) if (isRed(img, x, y)) ys.push(y);
  assert.ok(ys.length > 0, `red pixels in column ${x}`);
  return ys.reduce((a, b) => a + b, 0) / ys.length;
}

function plot(points: readonly CurvePoint[], options: PlotOptions = {}): RgbImage {
  return decodePng(plotCurves([{ name: 'curve', points, color: RED }], options));
}

const rising: CurvePoint[] = Array.from({ length: 101 }, (_, i) => [i, i / 100]);

test('plot: PNG of the requested size, white background, a rising line from lower left to upper right', () => {
  const img = decodePng(plotCurves([{ name: 'loss', points: rising, color: RED }], { width: 640, height: 400 }));
  assert.equal(img.width, 640);
  assert.equal(img.height, 400);
  assert.deepEqual([...img.rgb.subarray(0, 3)], [255, 255, 255]);

  const box = redBox(img);
  assert.ok(box.w > 0.6 * img.width && box.h > 0.6 * img.height, `line spans the plot: ${JSON.stringify(box)}`);
  const corner = 12;
  assert.ok(count(img, isRed, box.x0, box.y1 - corner, box.x0 + corner, box.y1 + 1) > 0, 'ink at the lower left');
  assert.ok(count(img, isRed, box.x1 - corner, box.y0, box.x1 + 1, box.y0 + corner) > 0, 'ink at the upper right');
  assert.equal(count(img, isRed, box.x0, box.y0, box.x0 + 0.4 * box.w, box.y0 + 0.4 * box.h), 0, 'nothing at the upper left');
  assert.equal(count(img, isRed, box.x1 - 0.4 * box.w, box.y1 - 0.4 * box.h, box.x1 + 1, box.y1 + 1), 0, 'nothing at the lower right');
  const mid = Math.round(box.x0 + box.w / 2);
  assert.ok(Math.abs(meanRedY(img, mid) - (box.y0 + box.h / 2)) < 3, 'x = 50 maps to y = 0.5');

  // The frame sits just outside the data: 4% padding each side.
  const f = frame(img);
  for (const pad of [(box.x0 - f.left) / (f.right - f.left), (f.right - box.x1) / (f.right - f.left), (f.bottom - box.y1) / (f.bottom - f.top), (box.y0 - f.top) / (f.bottom - f.top)]) {
    assert.ok(pad > 0.02 && pad < 0.07, `padding ${pad}, frame ${JSON.stringify(f)}, line ${JSON.stringify(box)}`);
  }
  assert.ok(count(img, isDark, 0, f.top, f.left - 4, f.bottom) > 50, 'y tick labels left of the frame');
  assert.ok(count(img, isDark, f.left, f.bottom + 4, f.right, img.height) > 50, 'x tick labels below the frame');
});

test('plot: the lowest point of a V is drawn at its x', () => {
  const img = plot([[0, 1], [20, 0], [100, 1]]);
  const box = redBox(img);
  const bottomXs: number[] = [];
  for (let x = box.x0; x <= box.x1; x++) if (isRed(img, x, box.y1)) bottomXs.push(x);
  const x = bottomXs.reduce((a, b) => a + b, 0) / bottomXs.length;
  assert.ok(Math.abs(x - (box.x0 + 0.2 * box.w)) < 4, `V bottom at ${x}, box ${JSON.stringify(box)}`);
});

test('plot: log-scale y draws an exponential as a straight line', () => {
  const exp: CurvePoint[] = Array.from({ length: 31 }, (_, i) => [i / 10, 10 ** (i / 10)]);
  const logImg = plot(exp, { logY: true });
  const box = redBox(logImg);
  for (const f of [0.25, 0.5, 0.75]) {
    const y = meanRedY(logImg, Math.round(box.x0 + f * box.w));
    assert.ok(Math.abs(y - (box.y1 - f * box.h)) < 4, `log: at ${f} of the width, y ${y} on the straight line`);
  }
  const linImg = plot(exp);
  const lin = redBox(linImg);
  const y = meanRedY(linImg, Math.round(lin.x0 + 0.5 * lin.w));
  assert.ok(y > lin.y1 - 0.2 * lin.h, 'linear: the middle of an exponential hugs the bottom');

  // Non-positive values cannot be shown on a log axis: skipped, not a crash.
  const withZero = plot([[0, 0], [1, -1], [2, 1], [3, 100]], { logY: true });
  assert.ok(redBox(withZero).h > 100);
  const labels = decodePng(plotCurves([{ name: 'a', points: [[0, 1e-4], [1, 1e2]] }], { logY: true }));
  assert.equal(labels.width, 800);
});

test('plot: constant, single-point, empty and all-NaN series do not crash', () => {
  const constant = plot([[0, 2.5], [10, 2.5], [20, 2.5]]);
  const c = redBox(constant);
  assert.ok(c.w > 0.6 * constant.width && c.h < 10, 'a flat line across the plot');
  const single = plot([[5, 3]]);
  const s = redBox(single);
  assert.ok(s.w >= 3 && s.w < 15 && s.h >= 3 && s.h < 15, `single point drawn as a dot: ${JSON.stringify(s)}`);
  const f = frame(single);
  assert.ok(Math.abs(s.x0 + s.w / 2 - (f.left + f.right) / 2) < 2 && Math.abs(s.y0 + s.h / 2 - (f.top + f.bottom) / 2) < 2, 'the dot sits mid-plot');
  for (const points of [[], [[NaN, NaN]], [[0, Infinity], [1, -Infinity]]] as CurvePoint[][]) {
    const img = plot(points, { logY: points.length === 1 });
    assert.equal(img.width, 800);
    assert.equal(count(img, isRed, 0, 0, img.width, img.height), 0);
  }
  assert.equal(decodePng(plotCurves([])).height, 500);
});

test('plot: NaN and Infinity points are skipped, leaving gaps, and do not distort the axes', () => {
  const img = plot([[0, 0], [1, 0], [2, NaN], [3, 0], [4, 0], [5, Infinity], [6, 0]]);
  const box = redBox(img);
  assert.ok(box.w > 0.6 * img.width, 'x range still 0..6');
  const colAt = (x: number) => Math.round(box.x0 + (x / 6) * (box.w - 1));
  const redIn = (x: number) => count(img, isRed, colAt(x), 0, colAt(x) + 1, img.height);
  for (const x of [0.5, 3.5, 6]) assert.ok(redIn(x) > 0, `line at x=${x}`);
  for (const x of [2, 5]) assert.equal(redIn(x), 0, `gap at x=${x}`);
});

test('plot: legend goes to an empty corner; title and axis titles are drawn', () => {
  const plain = plot(rising);
  const withLegend = plot(rising, { legend: true });
  const box = redBox(plain);
  let dx0 = Infinity;
  let dy0 = Infinity;
  let dx1 = -Infinity;
  let dy1 = -Infinity;
  for (let y = 0; y < plain.height; y++) {
    for (let x = 0; x < plain.width; x++) {
      const i = (y * plain.width + x) * 3;
      if (plain.rgb[i] === withLegend.rgb[i] && plain.rgb[i + 1] === withLegend.rgb[i + 1] && plain.rgb[i + 2] === withLegend.rgb[i + 2]) continue;
      dx0 = Math.min(dx0, x);
      dy0 = Math.min(dy0, y);
      dx1 = Math.max(dx1, x);
      dy1 = Math.max(dy1, y);
    }
  }
  assert.ok(dx1 >= dx0, 'the legend changed the image');
  assert.ok(dx1 < box.x0 + box.w / 2 && dy1 < box.y0 + box.h / 2, 'legend in the empty upper left, away from the rising line');
  assert.ok(count(withLegend, isRed, dx0, dy0, dx1 + 1, dy1 + 1) > 10, 'legend swatch in the series colour');
  assert.ok(count(withLegend, isDark, dx0, dy0, dx1 + 1, dy1 + 1) > 20, 'legend text');

  const titled = plot(rising, { title: 'Loss', xLabel: 'step', yLabel: 'loss' });
  const pf = frame(plain);
  const tf = frame(titled);
  assert.ok(tf.top > pf.top + 10, 'a title pushes the plot down');
  assert.ok(count(titled, isDark, 0, 0, titled.width, tf.top - 10) > 20, 'title above the plot');
  assert.equal(count(plain, isDark, 0, 0, plain.width, pf.top - 10), 0, 'no title, nothing above the plot');
  assert.ok(tf.left > pf.left + 20, 'a y axis title pushes the plot right');
  assert.ok(count(titled, isDark, 0, tf.top, tf.left - (pf.left - 10), tf.bottom) > 20, 'y axis title left of the tick labels');
  assert.ok(count(titled, isDark, 0, tf.bottom + 36, titled.width, titled.height) > 20, 'x axis title below the tick labels');
  assert.equal(count(plain, isDark, 0, pf.bottom + 36, plain.width, plain.height), 0, 'no x axis title');
});

test('plot: bad options are refused with a message naming them', () => {
  assert.throws(() => plotCurves([], { width: 10 }), /width must be an integer in \[200, 8192\], got 10/);
  assert.throws(() => plotCurves([{ name: 'a', points: [], color: 'red' }]), /series 0 \("a"\): color "red" must be "#rrggbb"/);
  assert.throws(() => plotCurves([{ name: 'a', points: [], lineWidth: 0 }]), /lineWidth/);
});

test('writeCurvesPng writes a decodable PNG and leaves no temporary file', () => {
  const file = tmpFile('curves.png');
  writeCurvesPng(file, [{ name: 'loss', points: rising }], { title: 'loss' });
  const img = decodePng(fs.readFileSync(file));
  assert.equal(img.width, 800);
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['curves.png']);
});

test('movingAverage: trailing mean over the window, non-finite values left out and kept as gaps', () => {
  assert.deepEqual(movingAverage([[1, 1], [2, 2], [3, 3], [4, 4]], 3), [[1, 1], [2, 1.5], [3, 2], [4, 3]]);
  const smoothed = movingAverage([[1, 2], [2, NaN], [3, 4], [4, 6]], 2);
  assert.deepEqual(smoothed.map(([x]) => x), [1, 2, 3, 4]);
  assert.ok(Number.isNaN(smoothed[1][1]));
  assert.deepEqual([smoothed[0][1], smoothed[2][1], smoothed[3][1]], [2, 4, 5]);
  assert.throws(() => movingAverage([], 0), /window must be a positive integer/);
});
