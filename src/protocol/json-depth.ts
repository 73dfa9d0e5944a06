/**
 * Whether `value` (parsed JSON) nests arrays and objects more than `max` levels deep (`[]` and
 * `{}` are one level). Iterative, so it cannot overflow the stack itself: `JSON.parse` takes a
 * value nested 100,000 levels deep (a 200 KB text) without trouble, but `JSON.stringify`, pino
 * and `structuredClone` recurse and throw `RangeError: Maximum call stack size exceeded` on it —
 * wherever such a value is serialized later (an event appended to the log, a log line, a frame
 * to a plugin), that throw would surface far from the input that caused it.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<{ value: object; depth: number }> = [];
  if (value !== null && typeof value === "object") stack.push({ value, depth: 1 });
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (depth > max) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (child !== null && typeof child === "object") stack.push({ value: child as object, depth: depth + 1 });
    }
  }
  return false;
}

/**
 * Whether the JSON text `text` opens arrays and objects more than `max` levels deep, counted on
 * the text (brackets inside strings skipped) so a frame is refused before `JSON.parse` builds a
 * deep value — one that would overflow the stack wherever it is serialized or described later.
 * It does not check that the text is JSON: `JSON.parse` still does.
 */
export function textNestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) depth--;
  }
  return false;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
