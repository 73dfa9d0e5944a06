/** Delay before the first reconnect attempt (before jitter). */
export const RECONNECT_INITIAL_DELAY_MS = 250;
/** No reconnect attempt waits longer than this (before jitter), however many failed. */
export const RECONNECT_MAX_DELAY_MS = 10_000;
/** Each failed attempt multiplies the delay by this. */
export const RECONNECT_FACTOR = 2;
/** Reconnect attempts in a row before giving up; unbounded by default (a gateway restart can take a while). */
export const RECONNECT_MAX_ATTEMPTS = Number.POSITIVE_INFINITY;

/**
 * Before the first successful connection, a failed upgrade is retried this many times when
 * the gateway answers HTTP (a cut or a hiccup), then reported. A gateway that cannot be
 * reached at all, or refuses the credentials, is reported at once.
 */
export const INITIAL_CONNECT_ATTEMPTS = 3;

export interface BackoffOptions {
  /** Default {@link RECONNECT_INITIAL_DELAY_MS}. */
  initialDelayMs?: number;
  /** Default {@link RECONNECT_MAX_DELAY_MS}. */
  maxDelayMs?: number;
  /** Default {@link RECONNECT_FACTOR}. */
  factor?: number;
  /** Failed attempts in a row after which the client gives up. Default {@link RECONNECT_MAX_ATTEMPTS}. */
  maxAttempts?: number;
  /** Source of jitter in [0, 1); inject for deterministic tests. Default `Math.random`. */
  random?: () => number;
}

/**
 * The delay before reconnect attempt `attempt` (1 for the first): exponential, capped, with
 * "equal jitter" — half the delay is fixed, half random — so that many clients cut off by
 * the same gateway restart do not all come back in the same millisecond, yet none retries
 * in a tight loop (AWS Architecture Blog, "Exponential Backoff And Jitter").
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelayMs ?? RECONNECT_INITIAL_DELAY_MS;
  const max = options.maxDelayMs ?? RECONNECT_MAX_DELAY_MS;
  const factor = options.factor ?? RECONNECT_FACTOR;
  const random = options.random ?? Math.random;
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(max, initial * Math.pow(factor, exponent));
  return Math.round(base / 2 + (random() * base) / 2);
}
