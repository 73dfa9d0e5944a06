/** Resolves after `ms` milliseconds (on the global timers, so vitest's fake timers drive it too). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
