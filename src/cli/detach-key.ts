import { UsageError } from "./exit-codes.js";

/** The key that leaves `attach`, the session running: a control key, as the byte it sends. */
export interface DetachKey {
  byte: number;
  /** How messages name it: `Ctrl-]`. */
  name: string;
}

/** Ctrl-] (as in telnet), unless `--detach-key` or SWITCHBOARD_DETACH_KEY says otherwise. */
export const DEFAULT_DETACH_KEY: DetachKey = { byte: 0x1d, name: "Ctrl-]" };

/**
 * Control keys that may detach: Ctrl-A to Ctrl-Z and Ctrl-\ ] ^ _ — not Ctrl-[ (Escape starts
 * every arrow key), Ctrl-@ (a NUL some terminals send for Ctrl-Space) nor Ctrl-? (Backspace).
 */
const ALLOWED = "abcdefghijklmnopqrstuvwxyz\\]^_";

/**
 * Reads a detach key written `ctrl-x`, `Ctrl-X`, `C-x` or `^X` (vim takes Ctrl-] for its tag jumps:
 * `--detach-key ctrl-q`), or throws with what is accepted.
 */
export function parseDetachKey(text: string, from: string): DetachKey {
  const m = /^(?:ctrl-|c-|\^)(.)$/i.exec(text.trim());
  const key = m?.[1]?.toLowerCase();
  if (key === undefined || !ALLOWED.includes(key)) {
    throw new UsageError(
      `${from} takes a control key, written ctrl-q or ^Q: ctrl-a to ctrl-z, or ctrl-\\, ctrl-], ctrl-^, ctrl-_ (not ${JSON.stringify(text)})`,
    );
  }
  const upper = key.toUpperCase();
  return { byte: upper.charCodeAt(0) & 0x1f, name: `Ctrl-${upper}` };
}

/** `--detach-key` (`given`), else SWITCHBOARD_DETACH_KEY, else undefined: the default. */
export function detachKeyOption(given: string | undefined, env = process.env): DetachKey | undefined {
  if (given !== undefined) return parseDetachKey(given, "--detach-key");
  const text = env["SWITCHBOARD_DETACH_KEY"];
  return text ? parseDetachKey(text, "SWITCHBOARD_DETACH_KEY") : undefined;
}
