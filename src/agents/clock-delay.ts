import type { Clock } from "../core/clock.js";

/**
 * Waits `ms` on `clock`. Resolves true when the time has passed, false as soon as `signal`
 * aborts (the timer and the listener are removed either way).
 */
export function clockDelay(clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const onAbort = (): void => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
