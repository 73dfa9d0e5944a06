/**
 * Event-loop time one background slice of take-overs may use before it yields (a take-over
 * connects to the holder's socket and starts its handshake: about 1–5 ms each on a loaded box,
 * so 1,000 of them in one go held a restarted gateway's loop for seconds; docs/benchmarks.md, "scale").
 */
export const ADOPT_SLICE_MS = 10;
/**
 * Background take-overs whose holder has not answered yet, at most. Each answer is read, checked
 * and its resent output appended on the event loop: 1,000 begun at once queued a viewer's
 * request behind all their answers. A take-over on demand is not held to it.
 */
export const ADOPTIONS_IN_FLIGHT = 32;
/**
 * How long a take-over holds its place among {@link ADOPTIONS_IN_FLIGHT} at most: a holder that
 * never answers (stopped, wedged) does not stall the rest; its session is lost or adopted whenever it answers.
 */
export const ADOPTION_SLOT_MS = 2000;

/** A take-over: connects to the holder and calls `settled` once it answered, failed or was not needed. */
export type TakeOver = (settled: () => void) => void;

/**
 * The held sessions a starting gateway restored running and has not taken over yet (docs/architecture.md, "Session holders"). The gateway listens first; then
 * {@link start} takes them over in slices of at most {@link ADOPT_SLICE_MS}, each in a turn of
 * the event loop of its own, oldest first, at most {@link ADOPTIONS_IN_FLIGHT} waiting for their
 * holders' answers, while a session something needs (a viewer, a keystroke, a stop) is taken
 * over at once by {@link now}: demand jumps the queue. test/sessions/holder-lazy-adopt.test.ts
 * and test/sessions/adoption-queue.test.ts hold the evidence.
 */
export class AdoptionQueue {
  /** Take-overs waiting, by session id, in the order they were added. */
  private readonly waiting = new Map<string, TakeOver>();
  /** Background take-overs waiting for their holders' answers, with when each began (monotonic ms). */
  private readonly inFlight = new Map<string, number>();
  private timer: NodeJS.Immediate | undefined;
  /** Wakes the slices when every place is held by a take-over past {@link ADOPTION_SLOT_MS}. */
  private slotTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;

  /** Queues `takeOver` for session `id` (run once, by a slice or by {@link now}). */
  add(id: string, takeOver: TakeOver): void {
    if (this.closed) return;
    this.waiting.set(id, takeOver);
    this.schedule();
  }

  /** Takes session `id` over now if it waits; nothing otherwise. */
  now(id: string): void {
    this.run(id, false);
  }

  /** Forgets session `id` (it ended, was removed, or its holder is left to the next gateway). */
  drop(id: string): void {
    this.waiting.delete(id);
  }

  /** Whether session `id` waits to be taken over. */
  has(id: string): boolean {
    return this.waiting.has(id);
  }

  /** Take-overs still waiting. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Begins the background slices (the gateway listens by then). */
  start(): void {
    this.started = true;
    this.schedule();
  }

  /** Stops the slices; what waits stays with its holder for the next gateway. */
  close(): void {
    this.closed = true;
    this.waiting.clear();
    this.inFlight.clear();
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
    clearTimeout(this.slotTimer);
    this.slotTimer = undefined;
  }

  private run(id: string, background: boolean): void {
    const takeOver = this.waiting.get(id);
    if (takeOver === undefined) return;
    this.waiting.delete(id);
    if (background) this.inFlight.set(id, performance.now());
    let done = false;
    takeOver(() => {
      if (done) return;
      done = true;
      if (background && this.inFlight.delete(id)) this.schedule();
    });
  }

  /** Places left for background take-overs; those held past {@link ADOPTION_SLOT_MS} are given back. */
  private freePlaces(): number {
    const expired = performance.now() - ADOPTION_SLOT_MS;
    for (const [id, began] of this.inFlight) if (began <= expired) this.inFlight.delete(id);
    return ADOPTIONS_IN_FLIGHT - this.inFlight.size;
  }

  private schedule(): void {
    if (!this.started || this.closed || this.timer !== undefined || this.waiting.size === 0) return;
    if (this.freePlaces() <= 0) {
      // An answer gives its place back (and schedules); a holder that never answers, after ADOPTION_SLOT_MS.
      this.slotTimer ??= setTimeout(() => {
        this.slotTimer = undefined;
        this.schedule();
      }, ADOPTION_SLOT_MS).unref();
      return;
    }
    this.timer = setImmediate(() => {
      this.timer = undefined;
      this.slice();
    });
  }

  private slice(): void {
    const until = performance.now() + ADOPT_SLICE_MS;
    for (const id of this.waiting.keys()) {
      if (this.inFlight.size >= ADOPTIONS_IN_FLIGHT) break;
      this.run(id, true);
      if (performance.now() >= until) break;
    }
    this.schedule();
  }
}
