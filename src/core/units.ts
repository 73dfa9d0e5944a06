/**
 * Durations and sizes as an operator writes them on a command line or in an environment
 * variable: `30d`, `12h`, `90m`, `45s`, `500ms`; `4GiB`, `512MiB`, `100MB`, `1024` (bytes).
 * `off` (or `never`, `none`) is "no limit": null. Anything else is undefined, for the caller to
 * name with its flag.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};
const NO_LIMIT = new Set(["off", "never", "none"]);

/** Milliseconds (a positive whole number), null for no limit, undefined when `text` is neither. */
export function parseDuration(text: string): number | null | undefined {
  return parseAmount(text, DURATION_UNITS, /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i);
}

/** Bytes (a positive whole number), null for no limit, undefined when `text` is neither. */
export function parseByteSize(text: string): number | null | undefined {
  return parseAmount(text, SIZE_UNITS, /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i);
}

function parseAmount(text: string, units: Record<string, number>, pattern: RegExp): number | null | undefined {
  const trimmed = text.trim();
  if (NO_LIMIT.has(trimmed.toLowerCase())) return null;
  const match = pattern.exec(trimmed);
  if (!match) return undefined;
  const value = Math.round(Number(match[1]) * units[(match[2] ?? "").toLowerCase()]!);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
