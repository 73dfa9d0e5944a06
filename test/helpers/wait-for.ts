/** How often {@link waitFor} asks again. */
const POLL_MS = 20;

/**
 * The tests' one polling helper: asks `fn` every POLL_MS until it returns a truthy value, and
 * returns that value. An error thrown by `fn` (a failed `expect`, a gateway not up yet) counts as
 * "not yet", as with `expect.poll`. Once `timeoutMs` has passed it throws the last such error (a
 * failed `expect`'s diff says what was seen), or "timed out after N ms waiting for WHAT".
 * @example
 * const line = await waitFor(() => out.split("\n").find((l) => l.startsWith("ready")), 5_000, "ready");
 * await waitFor(async () => {
 *   expect((await http.getSession(id)).state).toBe("exited");
 *   return true;
 * });
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failed: { error: unknown } | undefined;
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (error) {
      failed = { error };
    }
    if (Date.now() > deadline) {
      if (failed !== undefined) throw failed.error;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
