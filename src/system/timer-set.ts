/** One timer of a {@link TimerSet}: what it calls, and after how long (or at the next check phase). */
export interface TimerSpec {
  /** Milliseconds (or a function that says how many when the timer starts), or "immediate" for `setImmediate`. */
  after: number | (() => number) | "immediate";
  fire: () => void;
  /** Keeps the process alive while pending (default: unref()ed, as housekeeping timers are). */
  ref?: boolean;
}

/**
 * The timers of one object, by name: each name is pending at most once, and {@link stopAll}
 * (the owner's close) clears every one, so none outlives its owner; after {@link dispose} none
 * is armed again. A timeout that fired is kept and re-armed with `refresh()`, so a timer started
 * for every read allocates nothing. An owner that holds more than timers takes its set from
 * `Disposables` (disposables.ts).
 */
export class TimerSet<Name extends string> {
  private readonly handles = new Map<Name, NodeJS.Timeout | NodeJS.Immediate>();
  private readonly pending = new Set<Name>();
  private disposed = false;

  constructor(private readonly specs: Readonly<Record<Name, TimerSpec>>) {}

  /** Arms `name` from now, again from now if it is pending already. */
  start(name: Name): void {
    if (this.disposed) return;
    const handle = this.handles.get(name);
    const spec = this.specs[name];
    this.pending.add(name);
    if (handle !== undefined && "refresh" in handle && typeof spec.after === "number") {
      handle.refresh();
      return;
    }
    if (handle !== undefined && "refresh" in handle) clearTimeout(handle);
    else if (handle !== undefined) clearImmediate(handle);
    const fire = (): void => {
      this.pending.delete(name);
      spec.fire();
    };
    const made =
      spec.after === "immediate"
        ? setImmediate(fire)
        : setTimeout(fire, typeof spec.after === "number" ? spec.after : spec.after());
    if (spec.ref !== true) made.unref();
    this.handles.set(name, made);
  }

  /** Arms `name` unless it is pending already (then it fires when it was going to). */
  startIfIdle(name: Name): void {
    if (!this.pending.has(name)) this.start(name);
  }

  isPending(name: Name): boolean {
    return this.pending.has(name);
  }

  stop(name: Name): void {
    const handle = this.handles.get(name);
    if (handle === undefined) return;
    // A cleared timeout cannot be refresh()ed again: the next start makes a new one.
    if ("refresh" in handle) clearTimeout(handle);
    else clearImmediate(handle);
    this.handles.delete(name);
    this.pending.delete(name);
  }

  /** Clears every timer (the owner closes). */
  stopAll(): void {
    for (const name of [...this.handles.keys()]) this.stop(name);
  }

  /** Clears every timer and arms none again: the owner is gone. Idempotent. */
  dispose(): void {
    this.disposed = true;
    this.stopAll();
  }
}
