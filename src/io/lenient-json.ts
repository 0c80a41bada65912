// ref: SANA.md §5.5 (the sampler and flow_shift come from the checkpoint's scheduler_config.json).
// JSON as Python's json module writes it: standard JSON plus the bare tokens NaN, Infinity and -Infinity, which
// diffusers' save_pretrained emits (scheduler_config.json has "lambda_min_clipped": -Infinity) and JSON.parse
// rejects. Those tokens are rewritten outside string literals only, then the text goes through JSON.parse.

/** Overflowing literals that JSON.parse turns into +-Infinity. */
const INFINITY_LITERAL = '1e999';

export class LenientJsonError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'LenientJsonError';
  }
}

export function parseLenientJson(text: string, source: string): unknown {
  // Standard JSON (nearly every file, and big ones such as a 17 MB tokenizer.json) parses as it is: a text that
  // JSON.parse accepts has no bare NaN / Infinity outside strings, so the rewrite below would not change it.
  try {
    return JSON.parse(text);
  } catch {
    // not standard JSON: rewritten below, and a real syntax error reported there
  }
  // NaN has no JSON literal; stand in a string that cannot already occur in the text, and map it back.
  let nanMarker = '\u0000NaN';
  while (text.includes(nanMarker)) nanMarker += '\u0000';
  let sawNaN = false;

  let out = '';
  let copiedUpTo = 0;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      // Skip the string literal, escapes included; its content is never rewritten.
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    const replacement = tokenReplacementAt(text, i);
    if (replacement) {
      const value = replacement.token === 'NaN' ? JSON.stringify(nanMarker) : replacement.literal;
      if (replacement.token === 'NaN') sawNaN = true;
      out += text.slice(copiedUpTo, i) + value;
      i += replacement.token.length;
      copiedUpTo = i;
      continue;
    }
    i++;
  }
  out += text.slice(copiedUpTo);

  try {
    return sawNaN ? JSON.parse(out, (_key, value) => (value === nanMarker ? NaN : value)) : JSON.parse(out);
  } catch (err) {
    throw new LenientJsonError(source, `invalid JSON: ${(err as Error).message}`);
  }
}

function tokenReplacementAt(text: string, i: number): { token: string; literal: string } | null {
  for (const [token, literal] of [
    ['-Infinity', `-${INFINITY_LITERAL}`],
    ['Infinity', INFINITY_LITERAL],
    ['NaN', ''],
  ] as const) {
    if (text.startsWith(token, i) && !isIdentifierChar(text[i - 1]) && !isIdentifierChar(text[i + token.length])) {
      return { token, literal };
    }
  }
  return null;
}

function isIdentifierChar(ch: string | undefined): boolean {
  return ch !== undefined && /[A-Za-z0-9_$.+-]/.test(ch);
}
