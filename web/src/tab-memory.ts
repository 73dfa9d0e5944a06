/**
 * What this browser tab keeps across a reload, in sessionStorage (one tab's, and gone with it):
 * its client key (the SDK's `clientKey`, which lets the gateway keep this tab's control lease over
 * a reload, `control.reconnectGraceMs`) and which sessions it held control of when it went.
 */
const CLIENT_KEY = "switchboard.clientKey";
const HELD_PREFIX = "switchboard.control:";
/** As the protocol's ClientKey. */
const CLIENT_KEY_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

/** This tab's client key: the one it had before a reload, else a new random one. */
export function tabClientKey(): string {
  const kept = read(CLIENT_KEY);
  if (kept !== null && CLIENT_KEY_PATTERN.test(kept)) return kept;
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const key = btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
  write(CLIENT_KEY, key);
  return key;
}

/** Whether this tab held control of `session` when it was last shown (before a reload). */
export function heldBefore(session: string): boolean {
  return read(HELD_PREFIX + session) !== null;
}

/** Notes whether this tab holds control of `session` now. */
export function noteHeld(session: string, held: boolean): void {
  if (held) write(HELD_PREFIX + session, "1");
  else write(HELD_PREFIX + session, null);
}

function read(key: string): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null; // storage blocked: nothing kept, control ends with the page
  }
}

function write(key: string, value: string | null): void {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // storage blocked: nothing kept, control ends with the page
  }
}
