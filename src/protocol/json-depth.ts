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
