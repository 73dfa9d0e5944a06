import { afterAll, onTestFinished } from "vitest";

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
    afterAll(async () => {
      await fn();
    });
  }
}
