import type { Clock, Timer } from "../core/clock.js";
import type { PluginEntry } from "./config.js";
import type { PluginLimits } from "./limits.js";
import type { PluginInstance } from "./plugin-instance.js";
import type { StateStore } from "./state-store.js";
import type { PluginState } from "./types.js";

/** A configured plugin: its entry, state and restart bookkeeping, and its running instance if any. */
export interface Slot {
  id: string;
  entry: PluginEntry;
  fingerprint: string;
  state: PluginState;
  restarts: number;
  consecutiveCrashes: number;
  lastError: string | null;
  instance: PluginInstance | undefined;
  restartTimer: Timer | undefined;
  stableTimer: Timer | undefined;
  /** It wrote its own config (`writeConfigFile`): the next change of its entry is its own doing. */
  wroteOwnConfig: boolean;
  /** Bumped whenever the slot is stopped or reconfigured, so stale async steps give up. */
  generation: number;
  store: StateStore;
  /** The agents its last process had registered when it exited: runs for them wait while it comes back. */
  agents: ReadonlySet<string>;
  /** Its entry file and folder as its last start resolved them (where a SyntaxError is looked for). */
  source?: { entryFile: string; dir: string };
  /** Called once it is no longer starting or restarting (see {@link settled}). */
  settledWaiters: Array<() => void>;
  /** Requests to its public hooks in progress (bounded by `PUBLIC_HOOK_CONCURRENCY`). */
  publicCalls: number;
}

/**
 * Resolves once `slot` is no longer starting or restarting (see {@link wakeSettled}), after `ms`
 * at the latest, or at once when `signal` aborts.
 */
export function settled(slot: Slot, clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  // An abort already happened fires no event: it would wait the whole `ms`.
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      timer.cancel();
      signal.removeEventListener("abort", done);
      const i = slot.settledWaiters.indexOf(done);
      if (i >= 0) slot.settledWaiters.splice(i, 1);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    slot.settledWaiters.push(done);
  });
}

/** The slot left starting or restarting: whoever waits for that (see {@link settled}) goes on. */
export function wakeSettled(slot: Slot): void {
  for (const wake of slot.settledWaiters.splice(0)) wake();
}

/** Backoff before restart number `crashes` (1-based): base, 2×base, 4×base … capped. */
export function restartDelay(
  crashes: number,
  limits: Pick<PluginLimits, "restartBackoffBaseMs" | "restartBackoffMaxMs">,
): number {
  return Math.min(limits.restartBackoffBaseMs * 2 ** Math.max(0, crashes - 1), limits.restartBackoffMaxMs);
}
