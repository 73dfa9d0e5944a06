import { markHandled } from "./errors.js";

/** A promise and the functions that settle it. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/**
 * A promise to settle later, marked handled (see {@link markHandled}): a caller that never
 * awaits it causes no unhandled rejection, one that does still gets the error.
 */
export function handledDeferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  markHandled(promise);
  return { promise, resolve, reject };
}
