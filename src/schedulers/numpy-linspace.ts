// ref: SANA.md §5.2 / §5.4. numpy.linspace(start, stop, num) in float64 with numpy's exact operation order
// (y = k * step + start, last element forced to stop), so schedules built from it match diffusers to the last bit.

export function numpyLinspace(start: number, stop: number, num: number): Float64Array {
  if (!Number.isSafeInteger(num) || num < 0) {
    throw new RangeError(`numpyLinspace: num must be a non-negative integer, got ${num}`);
  }
  const out = new Float64Array(num);
  const divisions = num - 1;
  const delta = stop - start;
  if (divisions <= 0) {
    // numpy: 0 or 1 samples have no step; the single sample is start.
    if (num === 1) out[0] = 0 * delta + start;
    return out;
  }
  const step = delta / divisions;
  for (let k = 0; k < num; k++) {
    // numpy divides first when the step underflows to zero (denormal deltas).
    out[k] = (step === 0 ? (k / divisions) * delta : k * step) + start;
  }
  out[num - 1] = stop;
  return out;
}
