/**
 * Event-loop time one background slice of take-overs may use before it yields (a take-over
 * connects to the holder's socket and starts its handshake: about 1–5 ms each on a loaded box,
 * so 1,000 of them in one go held a restarted gateway's loop for seconds; docs/benchmarks.md, "scale").
 */
export const ADOPT_SLICE_MS = 10;

/**
 * The held sessions a starting gateway restored running and has not taken over from their
 * holders yet (docs/architecture.md, "Session holders"). The gateway listens first; then
 * {@link start} takes them over in slices of at most {@link ADOPT_SLICE_MS}, each in a turn of
 * the event loop of its own, oldest first, while a session something needs (a viewer, a
 * keystroke, a stop) is taken over at once by {@link now}: demand jumps the queue.
 * test/sessions/holder-lazy-adopt.test.ts holds the evidence.
 */
export class AdoptionQueue {
  /** Take-overs waiting, by session id, in the order they were added. */
  private readonly waiting = new Map<string, () => void>();
  private timer: NodeJS.Immediate | undefined;
  private started = false;
  private closed = false;

  /** Queues `takeOver` for session `id` (run once, by a slice or by {@link now}). */
  add(id: string, takeOver: () => void): void {
    if (this.closed) return;
    this.waiting.set(id, takeOver);
    this.schedule();
  }

  /** Takes session `id` over now if it waits; nothing otherwise. */
  now(id: string): void {
    const takeOver = this.waiting.get(id);
    if (takeOver === undefined) return;
    this.waiting.delete(id);
    takeOver();
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
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (!this.started || this.closed || this.timer !== undefined || this.waiting.size === 0) return;
    this.timer = setImmediate(() => {
      this.timer = undefined;
      this.slice();
    });
  }

  private slice(): void {
    const until = performance.now() + ADOPT_SLICE_MS;
    for (const id of this.waiting.keys()) {
      this.now(id);
      if (performance.now() >= until) break;
    }
    this.schedule();
  }
}
