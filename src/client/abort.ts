/**
 * Cancellation with `AbortSignal`, as `fetch` does it: every SDK call that does network I/O or
 * waits takes `{signal}` in its options. Aborting rejects the call with the signal's reason
 * (`signal.reason`: an `AbortError` DOMException after `abort()` without a reason, a
 * `TimeoutError` for `AbortSignal.timeout(ms)`), an already-aborted signal rejects before
 * anything is sent, and the call removes its listener from the signal however it ends, so one
 * long-lived signal can be passed to any number of calls.
 */

/** Options of every SDK call that can be cancelled. */
export interface AbortOptions {
  /**
   * Gives up the call: it rejects with `signal.reason`. Aborting stops the waiting, not what
   * the gateway already received: a request that reached it may still be applied.
   */
  signal?: AbortSignal | undefined;
}

/** Why `signal` was aborted: its reason, or an `AbortError` where the runtime sets none (older browsers). */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/**
 * Runs `onAborted` with the signal's reason once if `signal` aborts; returns the function that
 * removes the listener (call it however the operation ends). Without a signal there is
 * nothing to remove.
 */
export function onAbort(signal: AbortSignal | undefined, onAborted: (reason: unknown) => void): () => void {
  if (!signal) return noAbortListener;
  const listener = () => onAborted(abortReason(signal));
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}

/**
 * `promise`, or a rejection with the signal's reason if it aborts first (at once if it
 * already has). Only the waiting is given up: `promise` goes on, so the caller stops what it
 * started if that matters.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const off = onAbort(signal, reject);
    promise.then(
      (value) => {
        off();
        resolve(value);
      },
      (error: unknown) => {
        off();
        reject(error);
      },
    );
  });
}

/** What {@link onAbort} returns without a signal: there is no listener to remove. */
export function noAbortListener(): void {
  // No signal: no listener was added.
}
