import { onTestFinished } from "vitest";

/** Clean-ups registered outside a test, run after the file's own `afterAll` hooks, newest first. */
const fileCleanups: Array<() => unknown> = [];

/**
 * Runs the file's clean-ups: an `afterAll` of test/setup-file.ts, registered for every file
 * before its own (an `afterAll` registered from inside a `beforeAll` never runs in vitest 4).
 */
export async function runFileCleanups(): Promise<void> {
  for (const fn of fileCleanups.splice(0).reverse()) await fn();
}

/**
 * Runs `fn` when the current test ends, or when the file's tests end if called outside a test
 * (at the top of a file, in `beforeAll`). Not `afterEach`: registered from inside a test, an
 * `afterEach` hook never runs for it (measured with vitest 4: a whole `npm test` left 132 data
 * directories, 660 MB, and the gateways of tests that did not close their own). Hooks of one
 * test run last-registered first, so a gateway closes before its data directory is removed.
 */
export function afterTest(fn: () => unknown): void {
  try {
    onTestFinished(async () => {
      await fn();
    });
  } catch {
    // Not inside a test.
    afterFile(fn);
  }
}

/** Runs `fn` when the file's tests end, also when called from a `beforeAll` (newest first). */
export function afterFile(fn: () => unknown): void {
  fileCleanups.push(fn);
}
