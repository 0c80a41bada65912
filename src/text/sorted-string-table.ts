// A read-only Map<string, number> over strings kept sorted in one UTF-16 blob: get and has by binary search, nothing
// built at load. The tokenizer load cache hands one to @huggingface/tokenizers as its BPE merge ranks (580604 keys
// for Gemma-2, which a real Map takes ~0.5 s to fill at every start); the library only calls get on them.
// ref: SANA.md §4.1

/** Keys in UTF-16 code unit order (JavaScript's default string order), as this table compares them. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class SortedStringTable extends Map<string, number> {
  /**
   * @param blob the keys, sorted by compareCodeUnits, concatenated
   * @param offsets [n + 1] start of key i in blob (code units); offsets[n] = blob.length
   * @param values [n] value of key i
   */
  constructor(
    private readonly blob: string,
    private readonly offsets: Int32Array,
    private readonly tableValues: Int32Array,
  ) {
    super();
    if (offsets.length !== tableValues.length + 1 || offsets[tableValues.length] !== blob.length) {
      throw new Error(`SortedStringTable: ${offsets.length} offsets for ${tableValues.length} values over ${blob.length} code units`);
    }
  }

  /** Writes the table of `entries` (any order; keys must be distinct). */
  static encode(entries: Iterable<readonly [string, number]>): { blob: string; offsets: Int32Array; values: Int32Array } {
    const sorted = [...entries].sort((a, b) => compareCodeUnits(a[0], b[0]));
    const offsets = new Int32Array(sorted.length + 1);
    const values = new Int32Array(sorted.length);
    let at = 0;
    for (let i = 0; i < sorted.length; i++) {
      if (i > 0 && sorted[i][0] === sorted[i - 1][0]) throw new Error(`SortedStringTable.encode: key ${JSON.stringify(sorted[i][0])} twice`);
      offsets[i] = at;
      values[i] = sorted[i][1];
      at += sorted[i][0].length;
    }
    offsets[sorted.length] = at;
    return { blob: sorted.map(([k]) => k).join(''), offsets, values };
  }

  /** Index of key, or -1. */
  private find(key: string): number {
    const { blob, offsets } = this;
    let lo = 0;
    let hi = this.tableValues.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const start = offsets[mid];
      const len = offsets[mid + 1] - start;
      const n = Math.min(key.length, len);
      let d = 0;
      for (let i = 0; i < n && d === 0; i++) d = key.charCodeAt(i) - blob.charCodeAt(start + i);
      if (d === 0) d = key.length - len;
      if (d === 0) return mid;
      if (d < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return -1;
  }

  override get(key: string): number | undefined {
    const i = typeof key === 'string' ? this.find(key) : -1;
    return i < 0 ? undefined : this.tableValues[i];
  }

  override has(key: string): boolean {
    return typeof key === 'string' && this.find(key) >= 0;
  }

  override get size(): number {
    return this.tableValues.length;
  }

  override set(key: string, _value?: number): this {
    throw new Error(`SortedStringTable is read-only (set ${JSON.stringify(key)})`);
  }

  override delete(key: string): boolean {
    throw new Error(`SortedStringTable is read-only (delete ${JSON.stringify(key)})`);
  }

  override clear(): void {
    throw new Error('SortedStringTable is read-only (clear)');
  }

  /** Entries in key order. */
  override *entries(): MapIterator<[string, number]> {
    for (let i = 0; i < this.tableValues.length; i++) yield [this.blob.slice(this.offsets[i], this.offsets[i + 1]), this.tableValues[i]];
  }

  override [Symbol.iterator](): MapIterator<[string, number]> {
    return this.entries();
  }

  override *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  override *values(): MapIterator<number> {
    yield* this.tableValues;
  }

  override forEach(fn: (value: number, key: string, map: Map<string, number>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}
