// Training curves as a PNG line chart: ticks, numeric tick labels, axis titles, a legend, optional log-scale y.
//
// Drawn straight into an RGB buffer (encoded by pngjs) with anti-aliased lines and a built-in 5x7 bitmap font,
// rather than SVG plus a rasterizer: no native binary, no system fonts, and the same pixels on every machine.

import { writeBytesAtomic } from '../io/atomic-write.js';
import { encodePng } from '../io/png.js';

export type CurvePoint = readonly [x: number, y: number];

export interface CurveSeries {
  readonly name: string;
  /** Drawn in this order, joined by lines; a non-finite point (or y <= 0 on a log scale) leaves a gap. */
  readonly points: readonly CurvePoint[];
  /** '#rrggbb'; by default the next colour of a ten-colour palette. */
  readonly color?: string;
  /** Line width in pixels; default 2 at 800x500, scaled with the image. */
  readonly lineWidth?: number;
  /** A dot at each point, for sparse series such as validation loss. */
  readonly markers?: boolean;
}

export interface PlotOptions {
  readonly width?: number;
  readonly height?: number;
  readonly title?: string;
  readonly xLabel?: string;
  readonly yLabel?: string;
  readonly logY?: boolean;
  /** Default: shown when there is more than one series. Placed in the plot corner with the least ink. */
  readonly legend?: boolean;
}

type Rgb = readonly [number, number, number];

// matplotlib's "tab10": distinct, and readable on white.
const PALETTE: readonly string[] = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const TEXT: Rgb = [0x22, 0x22, 0x22];
const FRAME: Rgb = [0x33, 0x33, 0x33];
const GRID: Rgb = [0xe4, 0xe4, 0xe4];
const MINOR_GRID: Rgb = [0xf2, 0xf2, 0xf2];

// Printable ASCII from ' ' on, 8 rows per glyph (7 above the baseline, 1 for descenders), one base-32 digit per
// row, bit 4 the leftmost of 5 columns.
const FONT =
  '0000000044444040aa000000aavavaa04fke5u40op248j30cik8lid044000000248884208422248004lel400044v4400' +
  '00000c48000e000000000cc011248gg0ehjlphe04c4444e0eh1248v0eh161he026aiv220vgu11he068guhhe0v1248880' +
  'ehhehhe0ehhf12c00cc0cc000cc0c480248g842000v0v00084212480eh124040ehnlngf0ehhvhhh0uhhuhhu0ehggghe0' +
  'uhhhhhu0vgguggv0vgguggg0ehgnhhf0hhhvhhh0e44444e072222ic0hikokih0ggggggv0hrllhhh0hhpljhh0ehhhhhe0' +
  'uhhuggg0ehhhlid0uhhukih0fgge11u0v4444440hhhhhhe0hhhhha40hhhllla0hha4ahh0hha44440v1248gv0e88888e0' +
  'gg842110e22222e04ah000000000000v8400000000e1fhf0ggmphhu000egghe011djhhf000ehvge0698s888000fhhf1e' +
  'ggmphhh040c444e0206222icggikoki0c44444e000qllll000mphhh000ehhhe000uhhugg00fhhf1100mpggg000fge1u0' +
  '88s8896000hhhjd000hhha4000hhlla000ha4ah000hhhf1e00v248v0244844204444444084424480008l2000';
const GLYPH_W = 5;
const GLYPH_H = 8;
const CAP_H = 7;
const ADVANCE = GLYPH_W + 1;

class Canvas {
  readonly rgb: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgb = new Uint8Array(width * height * 3).fill(255);
  }

  blend(x: number, y: number, color: Rgb, alpha: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || alpha <= 0) return;
    const a = Math.min(alpha, 1);
    const i = (y * this.width + x) * 3;
    for (let c = 0; c < 3; c++) this.rgb[i + c] = Math.round(this.rgb[i + c] * (1 - a) + color[c] * a);
  }

  fillRect(x0: number, y0: number, w: number, h: number, color: Rgb, alpha = 1): void {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) this.blend(x, y, color, alpha);
  }

  /** Text with its top-left at (x, y); `vertical` reads bottom to top, starting at (x, y) as its bottom-left. */
  text(s: string, x: number, y: number, scale: number, color: Rgb, vertical = false): void {
    [...s].forEach((ch, k) => {
      const code = ch.charCodeAt(0);
      const glyph = (code >= 32 && code < 127 ? code : 63) - 32;
      for (let row = 0; row < GLYPH_H; row++) {
        const bits = parseInt(FONT[glyph * GLYPH_H + row], 32);
        for (let col = 0; col < GLYPH_W; col++) {
          if (!(bits & (16 >> col))) continue;
          const u = (k * ADVANCE + col) * scale;
          const v = row * scale;
          if (vertical) this.fillRect(x + v, y - u - scale, scale, scale, color);
          else this.fillRect(x + u, y + v, scale, scale, color);
        }
      }
    });
  }
}

function textWidth(s: string, scale: number): number {
  return s.length === 0 ? 0 : ([...s].length * ADVANCE - 1) * scale;
}

function fitText(s: string, maxWidth: number, scale: number): string {
  const chars = [...s];
  const room = Math.floor((maxWidth / scale + 1) / ADVANCE);
  return chars.length <= room ? s : `${chars.slice(0, Math.max(0, room - 3)).join('')}...`;
}

function parseColor(color: string, where: string): Rgb {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) throw new Error(`${where}: color "${color}" must be "#rrggbb"`);
  return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
}

interface Axis {
  /** Data range after transform (log10 for a log axis). */
  readonly lo: number;
  readonly hi: number;
  readonly ticks: readonly { readonly value: number; readonly label: string }[];
  readonly minor: readonly number[];
}

function transform(v: number, log: boolean): number {
  return log ? Math.log10(v) : v;
}

/** Data range in transformed space, padded by 4% (a degenerate one widened) so curves clear the frame. */
function dataRange(values: readonly number[], log: boolean): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (hi - lo <= Math.abs(hi) * 1e-12) {
    const pad = log ? 0.1 : hi === 0 ? 1 : Math.abs(hi) * 0.05;
    return [lo - pad, hi + pad];
  }
  const pad = (hi - lo) * 0.04;
  return [lo - pad, hi + pad];
}

function niceStep(rough: number): number {
  const mag = 10 ** Math.floor(Math.log10(rough));
  const f = rough / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

function nextNiceStep(step: number): number {
  return niceStep(step * 1.6);
}

/**
 * Labels with as many decimals as the step needs; for very large or very small magnitudes, exponent form with
 * the fewest mantissa digits that still read back as the tick values.
 */
function formatTicks(values: readonly number[], step: number): string[] {
  const maxAbs = Math.max(...values.map(Math.abs));
  if (maxAbs >= 1e6 || (maxAbs > 0 && maxAbs < 1e-3)) {
    const exp = (v: number, digits: number) => (v === 0 ? '0' : v.toExponential(digits).replace('e+', 'e'));
    const exact = (digits: number) => values.every((v) => Math.abs(Number(exp(v, digits)) - v) <= step * 1e-6);
    let digits = 0;
    while (digits < 12 && !exact(digits)) digits++;
    return values.map((v) => exp(v, digits));
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return values.map((v) => (Math.abs(v) < step * 1e-6 ? 0 : v).toFixed(decimals));
}

function linearTicks(lo: number, hi: number, target: number, fits: (labels: string[], step: number) => boolean) {
  let step = niceStep((hi - lo) / Math.max(1, target));
  if (!(step > 0 && Number.isFinite(step))) return { values: [], labels: [] };
  for (;;) {
    const values: number[] = [];
    for (let k = Math.ceil(lo / step); k * step <= hi; k++) values.push(Number((k * step).toPrecision(12)));
    const labels = formatTicks(values, step);
    if (values.length <= 2 || fits(labels, step)) return { values, labels };
    step = nextNiceStep(step);
  }
}

function makeAxis(values: readonly number[], log: boolean, pixels: number, spacing: number, fits: (labels: string[], pixelsPerTick: number) => boolean): Axis {
  const [lo, hi] = dataRange(values, log);
  const target = pixels / spacing;
  const fitsAt = (labels: string[], n: number) => fits(labels, pixels / Math.max(1, n));
  if (!log) {
    const t = linearTicks(lo, hi, target, (labels, step) => fitsAt(labels, (hi - lo) / step));
    return { lo, hi, ticks: t.values.map((value, i) => ({ value, label: t.labels[i] })), minor: [] };
  }
  const first = Math.ceil(lo);
  const last = Math.floor(hi);
  if (last - first >= 1) {
    const plain = first >= -3 && last <= 5; // otherwise all in exponent form, so the labels line up
    const decade = (k: number) => (plain ? (10 ** k).toFixed(Math.max(0, -k)) : `1e${k}`);
    for (let every = 1; ; every++) {
      const ks: number[] = [];
      for (let k = Math.ceil(first / every) * every; k <= last; k += every) ks.push(k);
      const labels = ks.map(decade);
      if (ks.length <= 2 || fitsAt(labels, (hi - lo) / every)) {
        const minor: number[] = [];
        if (every === 1 && hi - lo < 8) {
          for (let k = Math.floor(lo); k <= hi; k++) for (let m = 2; m <= 9; m++) if (k + Math.log10(m) > lo && k + Math.log10(m) < hi) minor.push(k + Math.log10(m));
        }
        return { lo, hi, ticks: ks.map((k, i) => ({ value: k, label: labels[i] })), minor };
      }
    }
  }
  // Less than two decades in view: evenly stepped values, placed on the log scale.
  const t = linearTicks(10 ** lo, 10 ** hi, target, (labels, step) => fitsAt(labels, (10 ** hi - 10 ** lo) / step));
  const ticks = t.values.map((v, i) => ({ value: Math.log10(v), label: t.labels[i] })).filter((tk) => Number.isFinite(tk.value));
  return { lo, hi, ticks, minor: [] };
}

/** Anti-aliased strokes of one series, accumulated as coverage so overlapping segments do not darken. */
class Coverage {
  readonly alpha: Float32Array;

  constructor(
    readonly x0: number,
    readonly y0: number,
    readonly w: number,
    readonly h: number,
  ) {
    this.alpha = new Float32Array(w * h);
  }

  /** A segment with round caps, `radius` half its width; a zero-length one is a dot. */
  capsule(ax: number, ay: number, bx: number, by: number, radius: number): void {
    const reach = radius + 1;
    const xMin = Math.max(this.x0, Math.floor(Math.min(ax, bx) - reach));
    const xMax = Math.min(this.x0 + this.w - 1, Math.ceil(Math.max(ax, bx) + reach));
    const yMin = Math.max(this.y0, Math.floor(Math.min(ay, by) - reach));
    const yMax = Math.min(this.y0 + this.h - 1, Math.ceil(Math.max(ay, by) + reach));
    const dx = bx - ax;
    const dy = by - ay;
    const len2 = dx * dx + dy * dy;
    for (let y = yMin; y <= yMax; y++) {
      for (let x = xMin; x <= xMax; x++) {
        const px = x + 0.5 - ax;
        const py = y + 0.5 - ay;
        const t = len2 === 0 ? 0 : Math.min(1, Math.max(0, (px * dx + py * dy) / len2));
        const ex = px - t * dx;
        const ey = py - t * dy;
        const d = Math.sqrt(ex * ex + ey * ey);
        const a = Math.min(1, radius + 0.5 - d);
        if (a <= 0) continue;
        const i = (y - this.y0) * this.w + (x - this.x0);
        if (a > this.alpha[i]) this.alpha[i] = a;
      }
    }
  }
}

interface Prepared {
  readonly name: string;
  readonly color: Rgb;
  readonly radius: number;
  readonly markers: boolean;
  /** Runs of consecutive drawable points; each run is drawn as one polyline. */
  readonly runs: readonly CurvePoint[][];
}

function prepare(series: readonly CurveSeries[], logY: boolean, scale: number): Prepared[] {
  return series.map((s, i) => {
    const where = `plotCurves: series ${i} ("${s.name}")`;
    if (typeof s.name !== 'string') throw new Error(`plotCurves: series ${i} needs a name (a string)`);
    if (!Array.isArray(s.points)) throw new Error(`${where}: points must be an array of [x, y] pairs`);
    const runs: CurvePoint[][] = [];
    let run: CurvePoint[] = [];
    for (const p of s.points) {
      const [x, y] = p;
      if (Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)) run.push([x, y]);
      else if (run.length > 0) {
        runs.push(run);
        run = [];
      }
    }
    if (run.length > 0) runs.push(run);
    const width = s.lineWidth ?? scale;
    if (!(width > 0 && width <= 50)) throw new Error(`${where}: lineWidth must be in (0, 50], got ${s.lineWidth}`);
    return { name: s.name, color: parseColor(s.color ?? PALETTE[i % PALETTE.length], where), radius: width / 2, markers: s.markers ?? false, runs };
  });
}

function checkSize(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`plotCurves: ${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  return v;
}

/** Renders the series as a line chart and returns the PNG file bytes. */
export function plotCurves(series: readonly CurveSeries[], options: PlotOptions = {}): Buffer {
  const width = checkSize('width', options.width ?? 800, 200, 8192);
  const height = checkSize('height', options.height ?? 500, 150, 8192);
  const logY = options.logY ?? false;
  const scale = Math.max(1, Math.round(Math.min(width / 400, height / 250)));
  const prepared = prepare(series, logY, scale);
  const canvas = new Canvas(width, height);
  const lineH = GLYPH_H * scale;
  const gap = 4 * scale;
  const tickLen = 3 * scale;

  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of prepared) {
    for (const run of s.runs) {
      for (const [x, y] of run) {
        xs.push(x);
        ys.push(transform(y, logY));
      }
    }
  }

  // Layout: the y tick labels' width depends on the y ticks, which depend on the plot height only.
  const top = (options.title ? lineH + 3 * gap : 2 * gap) + Math.ceil(CAP_H * scale / 2);
  const bottom = tickLen + gap + lineH + (options.xLabel ? lineH + gap : 0) + 2 * gap;
  const plotH = height - top - bottom;
  const yAxis = makeAxis(ys, logY, plotH, 20 * scale, (_labels, perTick) => perTick >= lineH + 2 * gap);
  const yLabelW = Math.max(...yAxis.ticks.map((t) => textWidth(t.label, scale)), textWidth('0', scale));
  const left = 2 * gap + (options.yLabel ? lineH + 2 * gap : 0) + yLabelW + gap + tickLen;
  const xAxisFor = (plotW: number) =>
    makeAxis(xs, false, plotW, 40 * scale, (labels, perTick) => Math.max(...labels.map((l) => textWidth(l, scale))) + 4 * gap <= perTick);
  let plotW = width - left - 2 * gap;
  let xAxis = xAxisFor(plotW);
  // Room for the half of the last x label that sticks out past the plot's right edge.
  const last = xAxis.ticks[xAxis.ticks.length - 1];
  if (last) {
    const overhang = left + ((last.value - xAxis.lo) / (xAxis.hi - xAxis.lo)) * plotW + textWidth(last.label, scale) / 2 + gap - width;
    if (overhang > 0) {
      plotW -= Math.ceil(overhang);
      xAxis = xAxisFor(plotW);
    }
  }
  if (plotW < 50 || plotH < 50) throw new Error(`plotCurves: ${width}x${height} leaves no room for the plot`);

  const toX = (v: number) => left + ((v - xAxis.lo) / (xAxis.hi - xAxis.lo)) * plotW;
  const toY = (v: number) => top + plotH - ((v - yAxis.lo) / (yAxis.hi - yAxis.lo)) * plotH;

  // Grid, then curves, then frame and ticks on top.
  for (const m of yAxis.minor) canvas.fillRect(left, Math.round(toY(m)), plotW, 1, MINOR_GRID);
  for (const t of yAxis.ticks) canvas.fillRect(left, Math.round(toY(t.value)), plotW, 1, GRID);
  for (const t of xAxis.ticks) canvas.fillRect(Math.round(toX(t.value)), top, 1, plotH, GRID);

  const ink = new Uint8Array(plotW * plotH);
  for (const s of prepared) {
    const cover = new Coverage(left, top, plotW, plotH);
    for (const run of s.runs) {
      const px = run.map(([x, y]) => [toX(x), toY(transform(y, logY))] as const);
      if (px.length === 1) cover.capsule(px[0][0], px[0][1], px[0][0], px[0][1], s.radius + scale);
      for (let i = 1; i < px.length; i++) cover.capsule(px[i - 1][0], px[i - 1][1], px[i][0], px[i][1], s.radius);
      if (s.markers) for (const [x, y] of px) cover.capsule(x, y, x, y, s.radius + 1.5 * scale);
    }
    cover.alpha.forEach((a, i) => {
      if (a <= 0) return;
      canvas.blend(left + (i % plotW), top + Math.floor(i / plotW), s.color, a);
      ink[i] = 1;
    });
  }

  canvas.fillRect(left - 1, top - 1, plotW + 2, 1, FRAME);
  canvas.fillRect(left - 1, top + plotH, plotW + 2, 1, FRAME);
  canvas.fillRect(left - 1, top - 1, 1, plotH + 2, FRAME);
  canvas.fillRect(left + plotW, top - 1, 1, plotH + 2, FRAME);
  const textY = (centre: number) => Math.round(centre - (CAP_H * scale) / 2);
  for (const t of yAxis.ticks) {
    const y = Math.round(toY(t.value));
    canvas.fillRect(left - 1 - tickLen, y, tickLen, 1, FRAME);
    canvas.text(t.label, left - 1 - tickLen - gap - textWidth(t.label, scale), textY(y), scale, TEXT);
  }
  for (const t of xAxis.ticks) {
    const x = Math.round(toX(t.value));
    canvas.fillRect(x, top + plotH + 1, 1, tickLen, FRAME);
    canvas.text(t.label, Math.round(x - textWidth(t.label, scale) / 2), top + plotH + 1 + tickLen + gap, scale, TEXT);
  }

  if (options.title) {
    const title = fitText(options.title, width - 4 * gap, scale);
    const x = Math.round((width - textWidth(title, scale)) / 2);
    canvas.text(title, x, 2 * gap, scale, TEXT);
    canvas.text(title, x + 1, 2 * gap, scale, TEXT); // double-struck: bold
  }
  if (options.xLabel) {
    const label = fitText(options.xLabel, plotW, scale);
    canvas.text(label, Math.round(left + (plotW - textWidth(label, scale)) / 2), height - 2 * gap - lineH, scale, TEXT);
  }
  if (options.yLabel) {
    const label = fitText(options.yLabel, plotH, scale);
    canvas.text(label, 2 * gap, Math.round(top + (plotH + textWidth(label, scale)) / 2), scale, TEXT, true);
  }

  if (options.legend ?? prepared.length > 1) drawLegend(canvas, prepared, ink, { left, top, plotW, plotH }, scale);
  return encodePng({ width, height, rgb: canvas.rgb });
}

function drawLegend(canvas: Canvas, series: readonly Prepared[], ink: Uint8Array, area: { left: number; top: number; plotW: number; plotH: number }, scale: number): void {
  if (series.length === 0) return;
  const pad = 4 * scale;
  const swatch = 12 * scale;
  const rowH = 10 * scale;
  const maxName = area.plotW / 2 - swatch - 3 * pad;
  const names = series.map((s) => fitText(s.name, maxName, scale));
  const boxW = pad + swatch + pad + Math.max(...names.map((n) => textWidth(n, scale))) + pad;
  const boxH = pad + rowH * series.length;
  const inset = 5 * scale;
  const xs = [area.left + area.plotW - inset - boxW, area.left + inset];
  const ys = [area.top + inset, area.top + area.plotH - inset - boxH];
  // Upper right first, as most loss curves leave it empty; then whichever corner covers the least ink.
  const corners = [[xs[0], ys[0]], [xs[1], ys[0]], [xs[0], ys[1]], [xs[1], ys[1]]] as const;
  let best = corners[0];
  let bestInk = Infinity;
  for (const [cx, cy] of corners) {
    let count = 0;
    for (let y = Math.max(cy, area.top); y < Math.min(cy + boxH, area.top + area.plotH); y++) {
      for (let x = Math.max(cx, area.left); x < Math.min(cx + boxW, area.left + area.plotW); x++) count += ink[(y - area.top) * area.plotW + (x - area.left)];
    }
    if (count < bestInk) {
      best = [cx, cy];
      bestInk = count;
    }
  }
  const [bx, by] = best;
  canvas.fillRect(bx, by, boxW, boxH, [255, 255, 255], 0.9);
  canvas.fillRect(bx, by, boxW, 1, GRID);
  canvas.fillRect(bx, by + boxH - 1, boxW, 1, GRID);
  canvas.fillRect(bx, by, 1, boxH, GRID);
  canvas.fillRect(bx + boxW - 1, by, 1, boxH, GRID);
  series.forEach((s, i) => {
    const cy = by + pad + i * rowH + Math.round((CAP_H * scale) / 2);
    const cover = new Coverage(bx, by, boxW, boxH);
    cover.capsule(bx + pad, cy, bx + pad + swatch, cy, s.radius);
    if (s.markers) cover.capsule(bx + pad + swatch / 2, cy, bx + pad + swatch / 2, cy, s.radius + 1.5 * scale);
    cover.alpha.forEach((a, j) => canvas.blend(bx + (j % boxW), by + Math.floor(j / boxW), s.color, a));
    canvas.text(names[i], bx + pad + swatch + pad, by + pad + i * rowH, scale, TEXT);
  });
}

/** `plotCurves`, written to `file` through a temporary file so a reader never sees half a PNG. */
export function writeCurvesPng(file: string, series: readonly CurveSeries[], options: PlotOptions = {}): void {
  writeBytesAtomic(file, plotCurves(series, options));
}

/**
 * Trailing mean over the last `window` points (non-finite values left out of the mean), for a smoothed copy of a
 * noisy loss curve. A non-finite point stays non-finite so the smoothed curve has the same gaps.
 */
export function movingAverage(points: readonly CurvePoint[], window: number): Array<[number, number]> {
  if (!Number.isInteger(window) || window < 1) throw new Error(`movingAverage: window must be a positive integer, got ${window}`);
  let sum = 0;
  let count = 0;
  return points.map(([x, y], i) => {
    if (Number.isFinite(y)) {
      sum += y;
      count++;
    }
    if (i >= window) {
      const old = points[i - window][1];
      if (Number.isFinite(old)) {
        sum -= old;
        count--;
      }
    }
    return [x, Number.isFinite(y) && count > 0 ? sum / count : NaN];
  });
}
