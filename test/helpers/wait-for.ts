/** How often {@link waitFor} asks again. */
const POLL_MS = 20;

/**
 * The tests' one polling helper: asks `fn` every POLL_MS until it returns a truthy value, and
 * returns that value; throws "timed out after N ms waiting for WHAT" once `timeoutMs` has passed.
 * @example
 * const line = await waitFor(() => out.split("\n").find((l) => l.startsWith("ready")), 5_000, "ready");
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
