import { TimerSet } from "./timer-set.js";
import type { TimerSpec } from "./timer-set.js";

/** Something that releases what it holds (timers, listeners, watchers). Idempotent. */
export interface Disposable {
  dispose(): void;
}

/**
 * What one owner holds that must end with it: its timers (a {@link TimerSet} made by
 * {@link timers}), listeners, watchers, each added as its release. {@link dispose} (the owner's
 * close) releases them all once, newest first; a timer set of a disposed owner arms nothing, and
 * whatever is added afterwards is released at once, so nothing outlives its owner
 * (test/system/disposables.test.ts).
 */
export class Disposables implements Disposable {
  private readonly releases: (() => void)[] = [];
  private done = false;

  get disposed(): boolean {
    return this.done;
  }

  /** Holds `release` (or a Disposable) until {@link dispose}; released at once when already disposed. */
  add(release: (() => void) | Disposable): void {
    const fn = typeof release === "function" ? release : () => release.dispose();
    if (this.done) fn();
    else this.releases.push(fn);
  }

  /** The owner's named timers: each pending at most once, all cleared by {@link dispose}. */
  timers<Name extends string>(specs: Readonly<Record<Name, TimerSpec>>): TimerSet<Name> {
    const set = new TimerSet(specs);
    this.add(set);
    return set;
  }

  /** Releases everything, newest first. Idempotent. */
  dispose(): void {
    if (this.done) return;
    this.done = true;
    for (const release of this.releases.splice(0).reverse()) release();
  }
}
