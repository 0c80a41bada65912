// Append-only CSV log of training metrics, one row per optimizer step, that a resumed run continues in place.
//
// Crash safety: each row goes out as one whole line in one write(2) on a file opened for appending, so a killed
// process leaves at most one partial last line; `open` drops such a line (and says so) before appending again.
// Rewrites (`create`, `truncateAfter`) go through a temporary file renamed into place.

import * as fs from 'node:fs';
import { writeFileAtomic } from '../io/atomic-write.js';

/** Column name to value; a column left out (or undefined) is an empty cell, e.g. validation loss between evals. */
export type MetricsRow = Readonly<Record<string, number | undefined>>;

export interface OpenedMetricsLog {
  readonly log: MetricsLog;
  /** Problems repaired while opening (a torn last line from a crash), for the caller to print. */
  readonly warnings: readonly string[];
}

const STEP = 'step';

/**
 * Integers exactly; other values with 9 significant digits, enough for any float32 to read back as itself.
 * NaN and infinities are kept as such: a diverged loss is worth recording.
 */
function formatCell(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isSafeInteger(value)) return String(value);
  return String(Number(value.toPrecision(9)));
}

function parseCell(cell: string, where: () => string): number | undefined {
  if (cell === '') return undefined;
  const value = Number(cell);
  if (cell.trim() !== cell || (Number.isNaN(value) && cell !== 'NaN')) throw new Error(`${where()}: "${cell}" is not a number`);
  return value;
}

function checkColumns(file: string, columns: readonly string[]): void {
  const bad = columns.find((c) => !/^[^,"\r\n]+$/.test(c) || c.trim() !== c);
  if (bad !== undefined) throw new Error(`${file}: column name "${bad}" must be non-empty, without surrounding spaces, and have no comma, quote or newline`);
  const dup = columns.find((c, i) => columns.indexOf(c) !== i);
  if (dup !== undefined) throw new Error(`${file}: column "${dup}" is named twice`);
  if (!columns.includes(STEP)) throw new Error(`${file}: columns [${columns.join(', ')}] must include "${STEP}"`);
}

export class MetricsLog {
  private readonly parsed: MetricsRow[] = [];
  /** Each row's line as it is on disk (no newline), so a rewrite reproduces the kept rows byte for byte. */
  private readonly lines: string[] = [];

  private constructor(
    readonly file: string,
    readonly columns: readonly string[],
  ) {}

  /** Starts a new log with just the header, replacing any file already there. */
  static create(file: string, columns: readonly string[]): MetricsLog {
    checkColumns(file, columns);
    const log = new MetricsLog(file, [...columns]);
    log.rewrite();
    return log;
  }

  /**
   * Reads an existing log back to continue appending to it. With `columns`, the file's header must be exactly
   * those columns in that order. A partial last line (a crash mid-write) is cut off the file and reported.
   */
  static open(file: string, columns?: readonly string[]): OpenedMetricsLog {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`cannot open metrics log ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const headerEnd = text.indexOf('\n');
    if (headerEnd < 0) throw new Error(`${file}: no complete header line; not a metrics log`);
    const header = text.slice(0, headerEnd).replace(/\r$/, '');
    if (columns !== undefined && header !== columns.join(',')) {
      throw new Error(`${file}: header "${header}" differs from the expected "${columns.join(',')}"`);
    }
    const fileColumns = header.split(',');
    checkColumns(file, fileColumns);
    const log = new MetricsLog(file, fileColumns);

    const warnings: string[] = [];
    const completeEnd = text.lastIndexOf('\n') + 1;
    if (completeEnd < text.length) {
      const torn = text.slice(completeEnd);
      fs.truncateSync(file, Buffer.byteLength(text.slice(0, completeEnd), 'utf8'));
      warnings.push(`${file}: dropped a partial last line "${torn}" (the previous run stopped mid-write)`);
    }
    const body = text.slice(headerEnd + 1, completeEnd).split('\n');
    body.pop(); // the empty string after the final newline
    body.forEach((raw, i) => {
      const line = raw.replace(/\r$/, '');
      const where = () => `${file} line ${i + 2}`;
      log.accept(line, where);
    });
    return { log, warnings };
  }

  /** Appends one row. Its step must come after the last logged one (resuming: call `truncateAfter` first). */
  append(row: MetricsRow): void {
    const unknown = Object.keys(row).find((k) => !this.columns.includes(k));
    if (unknown !== undefined) throw new Error(`${this.file}: no column "${unknown}" (columns: ${this.columns.join(', ')})`);
    for (const [k, v] of Object.entries(row)) {
      if (v !== undefined && typeof v !== 'number') throw new Error(`${this.file}: column "${k}" must be a number, got ${typeof v}`);
    }
    const line = this.columns.map((c) => (row[c] === undefined ? '' : formatCell(row[c] as number))).join(',');
    this.accept(line, () => this.file);
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    const fd = fs.openSync(this.file, 'a');
    try {
      const written = fs.writeSync(fd, bytes);
      if (written !== bytes.length) throw new Error(`${this.file}: short write (${written} of ${bytes.length} bytes)`);
    } catch (e) {
      this.parsed.pop();
      this.lines.pop();
      throw e;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Every row, in file order, as read back from the text (so values are what a later `open` will see). */
  rows(): readonly MetricsRow[] {
    return this.parsed;
  }

  /** (x, y) pairs of the rows where both cells hold a value, e.g. `points('val_loss')` for a curve. */
  points(yColumn: string, xColumn: string = STEP): Array<[number, number]> {
    for (const c of [xColumn, yColumn]) {
      if (!this.columns.includes(c)) throw new Error(`${this.file}: no column "${c}" (columns: ${this.columns.join(', ')})`);
    }
    const out: Array<[number, number]> = [];
    for (const row of this.parsed) {
      const x = row[xColumn];
      const y = row[yColumn];
      if (x !== undefined && y !== undefined) out.push([x, y]);
    }
    return out;
  }

  get lastStep(): number | undefined {
    return this.parsed.length === 0 ? undefined : (this.parsed[this.parsed.length - 1][STEP] as number);
  }

  /**
   * Drops the rows logged after `step` (training resumed from the checkpoint of that step, so they will be logged
   * again) and rewrites the file. Returns how many rows were dropped.
   */
  truncateAfter(step: number): number {
    if (!Number.isFinite(step)) throw new Error(`${this.file}: truncateAfter needs a finite step, got ${step}`);
    let keep = this.parsed.length;
    while (keep > 0 && (this.parsed[keep - 1][STEP] as number) > step) keep--;
    const dropped = this.parsed.length - keep;
    if (dropped > 0) {
      this.parsed.length = keep;
      this.lines.length = keep;
      this.rewrite();
    }
    return dropped;
  }

  /** Parses a row's line (so values in memory are what a later `open` reads back) and checks its step. */
  private accept(line: string, where: () => string): void {
    const cells = line.split(',');
    if (cells.length !== this.columns.length) {
      throw new Error(`${where()}: ${cells.length} cells, but the header has ${this.columns.length} columns`);
    }
    const row: Record<string, number | undefined> = {};
    this.columns.forEach((c, i) => {
      row[c] = parseCell(cells[i], where);
    });
    const step = row[STEP];
    if (step === undefined || !Number.isFinite(step)) throw new Error(`${where()}: "${STEP}" must be a finite number, got ${step}`);
    const last = this.lastStep;
    if (last !== undefined && !(step > last)) {
      throw new Error(`${where()}: step ${step} does not come after the last logged step ${last} (resuming from an earlier checkpoint? call truncateAfter(step) first)`);
    }
    this.parsed.push(Object.freeze(row));
    this.lines.push(line);
  }

  private rewrite(): void {
    const text = [this.columns.join(','), ...this.lines].join('\n') + '\n';
    writeFileAtomic(this.file, (out) => out.write(text));
  }
}
