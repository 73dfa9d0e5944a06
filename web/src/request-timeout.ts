import { REQUEST_TIMEOUT_MS } from "../../src/client/index.js";

/**
 * `localStorage` key: how long (ms) this browser's pages wait for the gateway's answer to a
 * request (a prompt, typed keys, control) before saying it is not confirmed, instead of the
 * SDK's REQUEST_TIMEOUT_MS. Unset by default; the browser tests shorten it (docs/ui.md).
 */
export const REQUEST_TIMEOUT_KEY = "switchboard:request-timeout-ms";
/** A stored value outside this range (or not a whole number) is ignored. */
export const MIN_PAGE_REQUEST_TIMEOUT_MS = 500;
export const MAX_PAGE_REQUEST_TIMEOUT_MS = 120_000;

let timeoutMs: number | undefined;

/** This page's request timeout: the stored one if valid, else REQUEST_TIMEOUT_MS; read once per page load. */
export function pageRequestTimeoutMs(): number {
  timeoutMs ??= stored() ?? REQUEST_TIMEOUT_MS;
  return timeoutMs;
}

function stored(): number | undefined {
  let text: string | null;
  try {
    text = localStorage.getItem(REQUEST_TIMEOUT_KEY);
  } catch {
    return undefined; // storage blocked (some private modes): the SDK's default
  }
  const ms = Number(text);
  return text !== null && Number.isInteger(ms) && ms >= MIN_PAGE_REQUEST_TIMEOUT_MS && ms <= MAX_PAGE_REQUEST_TIMEOUT_MS
    ? ms
    : undefined;
}
