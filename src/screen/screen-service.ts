import type { Clock } from "../core/clock.js";
import { WorkTimer } from "../core/work-timer.js";
import { outputOf } from "../log/output-entry.js";
import type { StoredEntry } from "../log/store.js";
import { SwitchboardError } from "../protocol/index.js";
import type { Session } from "../sessions/session.js";
import type { CheckpointStore } from "./checkpoint-store.js";
import { wholeScreenOf } from "./screen-ansi.js";
import { SCREEN_THREAD_HEAP_MB, ScreenThread } from "./screen-thread.js";
import type { FeedResize, ThreadLoss } from "./screen-thread.js";
import type { ScreenView, ViewOptions } from "./screen-emulator.js";
import type { ScreenQuarantineReason } from "./screen-quarantine.js";

/**
 * A checkpoint is saved once an emulator has parsed this much output since the last one: a
 * restart or a late viewer reparses at most about this much (plus one sweep's worth, below).
 */
export const SCREEN_CHECKPOINT_BYTES = 4 * 1024 * 1024;
/** A session whose output has been quiet this long gets a checkpoint of what it printed since the last. */
export const SCREEN_QUIET_MS = 2_000;
/** How often sessions are looked over for checkpoints due (either reason above), while a PTY session runs or an emulator is open. */
export const SCREEN_SWEEP_MS = 5_000;
/**
 * Parsing one sweep may do per session, on the event loop: a flood longer than a sweep would
 * otherwise be parsed whole on the thread that carries it (parsing runs at a few MB/s to tens
 * of MB/s, see docs/benchmarks.md). A session that prints faster falls behind until it is quiet.
 */
export const SCREEN_SWEEP_BUDGET_MS = 50;
/** An emulator no request, sweep or output used for this long is checkpointed and dropped; the next one starts from the checkpoint. */
export const SCREEN_IDLE_MS = 60_000;
/**
 * Live emulators at most (each holds its screen and up to SCREEN_SCROLLBACK_LINES; an idle one
 * with a prompt costs a few hundred KiB, docs/benchmarks.md): past it the least recently used is
 * checkpointed and dropped.
 */
export const SCREEN_MAX_EMULATORS = 256;
/**
 * How often new output is handed to the screen thread, in one transfer per session, while a
 * session has more than SCREEN_FEED_TRICKLE_BYTES not handed over or a `lag=screen` viewer keeps
 * its screen current.
 */
export const SCREEN_FEED_MS = 20;
/**
 * The feed's period while every session has at most SCREEN_FEED_TRICKLE_BYTES not handed over:
 * keystrokes' echoes and prompts are handed over a few times a second, not every 20 ms (each
 * feed is a message each way and a parse on the thread: ~175 µs of its CPU per key at 100 keys
 * a second, docs/benchmarks.md "Keystroke echo, hop by hop"). A request still feeds the head
 * at once, so a screen asked for is never behind (test/screen/screen-thread.test.ts).
 */
export const SCREEN_FEED_TRICKLE_MS = 250;
/** Output not yet handed to the thread past which a session is fed every SCREEN_FEED_MS. */
export const SCREEN_FEED_TRICKLE_BYTES = 4 * 1024;
/**
 * Output handed to the screen thread and not yet parsed, per session: past it the session waits
 * (its output stays in the log) and is fed from the log as the thread catches up.
 */
export const SCREEN_FEED_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Output handed to the thread per SCREEN_FEED_MS while a session's output is still growing (about
 * 6 MB/s): a flood is parsed mostly once it stops, so parsing does not take the CPU that carries
 * it (PTY → viewer fell to 0.66× of no screen with the whole flood fed; docs/benchmarks.md).
 * Interactive output is far below it; a request is fed to the head at once whatever this says.
 */
export const SCREEN_FEED_FLOOD_BYTES = 128 * 1024;
/** Events one feed takes from the log at a time (output and resizes); a request feeds one such page per turn. */
const FEED_PAGE_BYTES = 1024 * 1024;
/**
 * How many times a screen request is made when the thread stops under it: another session's
 * output that stopped it is quarantined, and the screen is opened again from its checkpoint in
 * the next thread (test/screen/screen-isolation.test.ts, "answers another session's screen…").
 */
export const SCREEN_ATTEMPTS = 3;
const SCREEN_EVENTS: ReadonlySet<string> = new Set(["output", "resize"]);

/**
 * Waits for the caller's next turn to read the log, `readBytes` being what its last read took: a
 * request's feed reads one page per turn and never holds the event loop for a whole backlog.
 */
export type FeedTurn = (readBytes: number) => Promise<void>;

/** The next turn of the event loop: the turn of a caller that has no scheduler. */
const nextTurn: FeedTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A session's screen as a viewer sees it, and the output byte it reflects. */
export interface SessionScreen extends ScreenView {
  offset: number;
}

/** One session's emulator in the screen thread: the log position fed to it up to. */
interface Tracked {
  sessionId: string;
  /** The emulator's name in the thread: the session's, made unique per opening. */
  key: string;
  /** The opening's number: names the emulator the thread parses in ThreadLoss. */
  tag: number;
  seq: number;
  offset: number;
  /** Bytes fed and not yet parsed. */
  inFlight: number;
  /** Offset of the last checkpoint saved (or restored). */
  saved: number;
  checkpointing: boolean;
  usedAt: number;
  /** The session's output size at the last feed tick: it grew since, the session is still printing. */
  seenBytes: number;
}

export interface ScreenServiceOptions {
  checkpoints: CheckpointStore;
  clock: Clock;
  /** The sessions to keep screens of and look over for checkpoints due; none when absent (tests drive {@link sweep}). */
  sessions?: () => Iterable<Session>;
  /** Tells of sessions created or changed (the timers sleep while no PTY session runs); returns the unsubscribe. */
  changes?: (listener: () => void) => () => void;
  /**
   * Tells of each entry published to a PTY session's log (EventLog.onPublished): the feed sleeps
   * while every emulator has all its log, and wakes on it. Without it the feed runs every
   * SCREEN_FEED_MS while a PTY session runs. Returns the unsubscribe.
   */
  published?: (listener: (sessionId: string) => void) => () => void;
  /** The screen thread's heap limit, SCREEN_THREAD_HEAP_MB when absent (tests lower it). */
  threadHeapMb?: number | undefined;
  /** Told when the screen thread stopped and the next use starts another (a metric counts them). */
  onThreadLost?: (() => void) | undefined;
  /** Told when a session's screen is quarantined, and why (a metric counts them). */
  onQuarantined?: ((sessionId: string, reason: ScreenQuarantineReason) => void) | undefined;
}

/**
 * The screens of PTY sessions, kept current in a worker thread (ScreenThread) that is handed
 * each running session's new output every SCREEN_FEED_MS, read from its log: the output path
 * never waits on parsing, and a thread that falls behind is fed from the log as it catches up.
 * A request is answered once the thread has parsed what the log held when it came. Idle
 * emulators are checkpointed and dropped; the next starts from the checkpoint. See
 * docs/protocol.md, "Screen".
 */
export class ScreenService {
  private readonly tracked = new Map<string, Tracked>();
  private readonly byKey = new Map<string, Tracked>();
  /** Sessions whose removal this service listens for. */
  private readonly watched = new Set<string>();
  /** Per session, its output size when a sweep last saw it grow, and when. */
  private readonly lastOutput = new Map<string, { bytes: number; at: number }>();
  /** Per session without an emulator, the output its checkpoint covers: the feed opens one only past it. */
  private readonly retired = new Map<string, number>();
  /** Per session, how many `lag=screen` viewers want its screen kept current (see keepCurrent). */
  private readonly current = new Map<string, number>();
  /**
   * Sessions whose output broke their emulator or stopped the screen thread (out of heap, a
   * crash), with why: not parsed again until the gateway restarts (else the same output would
   * break it again on every reopening, taking every screen with the thread).
   */
  private readonly unavailable = new Map<string, string>();
  /** Requests waiting for the thread to parse some of what is in flight. */
  private parsedWaiters: Array<() => void> = [];
  private readonly thread: ScreenThread;
  private opened = 0;
  private readonly sweepTimer: WorkTimer;
  private readonly feedTimer: WorkTimer;
  private readonly stopWatching: () => void;
  private closed = false;

  constructor(private readonly options: ScreenServiceOptions) {
    this.thread = new ScreenThread({
      onFed: (key, bytes) => {
        const t = this.byKey.get(key);
        if (t !== undefined) t.inFlight -= bytes;
        this.wakeParsed();
      },
      onBroken: (key, reason) =>
        this.quarantine(key, "emulator_error", `its output broke the screen emulator (${reason})`),
      // Every emulator went with the thread: the next feed or request opens them again from checkpoints.
      onLost: (loss) => {
        options.onThreadLost?.();
        this.blame(loss);
        for (const id of [...this.tracked.keys()]) this.untrack(id);
        this.wakeParsed();
      },
      heapMb: options.threadHeapMb,
    });
    const sessions = options.sessions;
    const busy = () => this.hasWork();
    this.sweepTimer = new WorkTimer({
      clock: options.clock,
      everyMs: SCREEN_SWEEP_MS,
      busy,
      run: () => this.sweep(sessions!()).catch(() => undefined), // a session removed mid-sweep: the next sweep goes on without it
    });
    const published = options.published;
    this.feedTimer = new WorkTimer({
      clock: options.clock,
      everyMs: () => this.feedMs(),
      busy: published === undefined ? busy : () => this.feedPending(),
      run: () => this.feedAll(),
    });
    this.stopWatching = () => undefined;
    if (sessions !== undefined) {
      this.thread.start().catch(() => undefined); // a thread that fails to start is reported by the request that needs it
      const wake = () => {
        this.sweepTimer.wake();
        this.feedTimer.wake();
      };
      const stopChanges = options.changes?.(wake);
      const stopPublished = published?.(() => this.feedTimer.wake());
      this.stopWatching = () => {
        stopChanges?.();
        stopPublished?.();
      };
      wake();
    }
  }

  /**
   * The screen of `session` now, at the viewer's size, and the output `offset` it reflects:
   * output from `offset` on continues it exactly (test/screen/screen-thread.test.ts shows it for
   * a PTY flooding `seq`). A viewer that fell far behind can be sent this and go on live from
   * `offset`, skipping `offset - sent` bytes. WRONG_SESSION_KIND for sessions without a PTY.
   * What the thread has not seen is fed a page per `turn`, within SCREEN_FEED_MAX_BYTES in flight.
   */
  async screen(session: Session, view: ViewOptions, turn: FeedTurn = nextTurn): Promise<SessionScreen> {
    for (let attempt = 1; ; attempt++) {
      const losses = this.thread.losses;
      try {
        return await this.screenOnce(session, view, turn);
      } catch (error) {
        // The thread stopped under it (not for its own output: that one is SCREEN_UNAVAILABLE).
        if (this.closed || this.thread.losses === losses || attempt >= SCREEN_ATTEMPTS) throw error;
      }
    }
  }

  private async screenOnce(session: Session, view: ViewOptions, turn: FeedTurn): Promise<SessionScreen> {
    if (!session.record.pty) {
      throw new SwitchboardError(
        "WRONG_SESSION_KIND",
        `session ${session.id} has no terminal (${session.record.kind}${session.record.kind === "terminal" ? " without a PTY" : ""}); read its output with GET /v1/sessions/${session.id}/output`,
      );
    }
    const lost = this.unavailable.get(session.id);
    if (lost !== undefined) throw new SwitchboardError("SCREEN_UNAVAILABLE", lost);
    const stored = this.tracked.has(session.id) ? undefined : this.storedView(session, view);
    if (stored !== undefined) return stored;
    const head = session.log.head;
    let t = this.opening(session);
    while (t.seq < head) {
      t.usedAt = this.options.clock.monotonic();
      if (t.inFlight >= SCREEN_FEED_MAX_BYTES) await this.parsed();
      else await turn(this.feed(session, t, Math.min(FEED_PAGE_BYTES, SCREEN_FEED_MAX_BYTES - t.inFlight), head));
      if (this.closed)
        throw new SwitchboardError("SHUTTING_DOWN", "the gateway is shutting down; ask again once it is back");
      const lostMeanwhile = this.unavailable.get(session.id);
      if (lostMeanwhile !== undefined) throw new SwitchboardError("SCREEN_UNAVAILABLE", lostMeanwhile);
      // Opened again from its checkpoint when it was dropped meanwhile (idle, or the thread was lost).
      t = this.opening(session);
    }
    t.usedAt = this.options.clock.monotonic();
    // Posted after the feed: the thread answers once it has parsed up to `offset`.
    const offset = t.offset;
    try {
      return { ...(await this.thread.view(t.key, view)), offset };
    } catch (error) {
      const lost = this.unavailable.get(session.id);
      throw lost === undefined ? error : new SwitchboardError("SCREEN_UNAVAILABLE", lost);
    }
  }

  /**
   * A `lag=screen` viewer's session: its output is fed to the thread at full speed, not held to
   * SCREEN_FEED_FLOOD_BYTES while it grows, so a viewer's jump to the screen does not wait for a
   * flood's backlog to be parsed (test/web/ui-terminal-flood.test.ts). Returns the release.
   */
  keepCurrent(sessionId: string): () => void {
    this.current.set(sessionId, (this.current.get(sessionId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.current.get(sessionId) ?? 1) - 1;
      if (left > 0) this.current.set(sessionId, left);
      else this.current.delete(sessionId);
    };
  }

  /** Resolves once the screen thread is up (a gateway starts it at once; benches wait for it). */
  ready(): Promise<void> {
    return this.thread.start();
  }

  /** The screen thread's heap and live emulators (benches; docs/benchmarks.md). */
  memory(): Promise<{ heapUsed: number; emulators: number }> {
    return this.thread.memory();
  }

  /**
   * Saves checkpoints that are due: for each session, once it printed SCREEN_CHECKPOINT_BYTES
   * since its last, or printed anything and then was quiet for SCREEN_QUIET_MS. Checkpoints and
   * drops idle emulators, and drops the checkpoints of sessions not in `sessions` (removed).
   */
  async sweep(sessions: Iterable<Session>): Promise<void> {
    const now = this.options.clock.monotonic();
    const listedIds: string[] = [];
    const due: Promise<void>[] = [];
    for (const session of sessions) {
      if (session.removed) continue;
      listedIds.push(session.id);
      if (this.unavailable.has(session.id)) continue;
      // Ended sessions are looked over once, just after they end; later only if someone viewed them.
      const ended = session.record.endedAt;
      const recent = ended === null || ended >= this.options.clock.now() - 2 * SCREEN_SWEEP_MS;
      if (!session.record.pty || !(recent || this.tracked.has(session.id))) continue;
      const t = this.tracked.get(session.id);
      const saved = t?.saved ?? this.options.checkpoints.offset(session.id) ?? 0;
      const behind = session.log.outputBytes - saved;
      if (behind <= 0) continue;
      const quiet = session.record.state !== "running" || this.quietSince(session) <= now - SCREEN_QUIET_MS;
      if (behind >= SCREEN_CHECKPOINT_BYTES || quiet) {
        const opened = this.opening(session);
        this.feed(session, opened, SCREEN_FEED_MAX_BYTES - opened.inFlight);
        due.push(this.checkpointOf(opened));
      }
    }
    await Promise.all(due);
    for (const t of [...this.tracked.values()]) {
      if (t.usedAt <= now - SCREEN_IDLE_MS) await this.retire(t);
    }
    // A removed session's checkpoint goes with it.
    const listed = new Set(listedIds);
    for (const id of this.options.checkpoints.ids()) if (!listed.has(id)) this.forget(id);
  }

  /** Forgets a removed session's emulator and checkpoint. */
  forget(sessionId: string): void {
    if (this.closed) return;
    this.watched.delete(sessionId);
    this.unavailable.delete(sessionId);
    this.drop(sessionId);
    this.options.checkpoints.remove(sessionId);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatching();
    this.sweepTimer.close();
    this.feedTimer.close();
    this.thread.close();
    this.wakeParsed();
    this.tracked.clear();
    this.byKey.clear();
    this.options.checkpoints.close();
  }

  /** Whether the timers have work: an emulator open, or a PTY session running (one that ended is woken for). */
  private hasWork(): boolean {
    if (this.tracked.size > 0) return true;
    for (const session of this.options.sessions?.() ?? []) {
      if (session.record.pty && !session.removed && session.record.state === "running") return true;
    }
    return false;
  }

  /**
   * Whether an emulator has entries of its log not handed to it yet (a feed's budget left them):
   * the feed goes on without a wake. test/server/idle-cpu.test.ts: idle terminals do not wake it.
   */
  private feedPending(): boolean {
    for (const session of this.options.sessions?.() ?? []) {
      const t = this.tracked.get(session.id);
      if (t !== undefined && !session.removed && t.seq < session.log.head) return true;
    }
    return false;
  }

  /** The feed's next period: SCREEN_FEED_MS while there is more than a trickle to hand over, else SCREEN_FEED_TRICKLE_MS. */
  private feedMs(): number {
    if (this.current.size > 0) return SCREEN_FEED_MS;
    for (const session of this.options.sessions?.() ?? []) {
      if (session.removed || !session.record.pty) continue;
      const fed = this.tracked.get(session.id)?.offset ?? this.retired.get(session.id) ?? 0;
      if (session.log.outputBytes - fed > SCREEN_FEED_TRICKLE_BYTES) return SCREEN_FEED_MS;
    }
    return SCREEN_FEED_TRICKLE_MS;
  }

  /** Hands each running PTY session's new output to the thread, within SCREEN_FEED_MAX_BYTES unparsed. */
  private feedAll(): void {
    if (this.closed) return;
    for (const session of this.options.sessions!()) {
      if (session.removed || !session.record.pty || this.unavailable.has(session.id)) continue;
      const t = this.tracked.get(session.id);
      if (t === undefined && !this.printedSinceRetired(session)) continue;
      if (t !== undefined && t.seq >= session.log.head) continue;
      const opened = t ?? this.opening(session);
      opened.usedAt = this.options.clock.monotonic();
      const growing = session.log.outputBytes !== opened.seenBytes && !this.current.has(session.id);
      opened.seenBytes = session.log.outputBytes;
      const room = SCREEN_FEED_MAX_BYTES - opened.inFlight;
      this.feed(session, opened, growing ? Math.min(room, SCREEN_FEED_FLOOD_BYTES) : room);
      if (opened.offset - opened.saved >= SCREEN_CHECKPOINT_BYTES) void this.checkpointOf(opened);
    }
  }

  /** Whether a running session without an emulator printed past what its checkpoint holds. */
  private printedSinceRetired(session: Session): boolean {
    if (session.record.state !== "running") return false;
    let covered = this.retired.get(session.id);
    if (covered === undefined) {
      covered = this.options.checkpoints.offset(session.id) ?? 0;
      this.retired.set(session.id, covered);
    }
    return session.log.outputBytes > covered;
  }

  /** When the session's output last grew, as far as the sweeps saw (monotonic clock). */
  private quietSince(session: Session): number {
    const now = this.options.clock.monotonic();
    const bytes = session.log.outputBytes;
    const last = this.lastOutput.get(session.id);
    if (last !== undefined && last.bytes === bytes) return last.at;
    this.lastOutput.set(session.id, { bytes, at: now });
    return now;
  }

  /**
   * The view asked for, read from the session's checkpoint when it is at the PTY's size and
   * the log holds no output or resize after it (a session ended, or quiet since): no emulator
   * is opened and nothing is parsed. Undefined when the thread must be asked.
   */
  private storedView(session: Session, view: ViewOptions): SessionScreen | undefined {
    const c = this.options.checkpoints.get(session.id);
    if (c?.views === undefined || c.seq > session.log.head || c.offset !== session.log.outputBytes) return undefined;
    if ((view.cols ?? c.cols) !== c.cols || (view.rows ?? c.rows) !== c.rows) return undefined;
    if (screenChangedSince(session, c.seq)) return undefined;
    if (view.format === "text") return { ...c.views.text, offset: c.offset };
    const screen = view.whole === true ? wholeScreenOf(c.state) : c.views.ansi.screen;
    return { ...c.views.ansi, screen, offset: c.offset };
  }

  /** The session's emulator, opened in the thread at its last checkpoint (or the log's start) if it has none. */
  private opening(session: Session): Tracked {
    const existing = this.tracked.get(session.id);
    if (existing !== undefined) return existing;
    if (!this.watched.has(session.id)) {
      // A purge removes the screen at once, with the rest of what the session printed.
      this.watched.add(session.id);
      session.onRemoved(() => this.forget(session.id));
    }
    if (this.tracked.size >= SCREEN_MAX_EMULATORS) {
      const lru = [...this.tracked.values()].reduce((a, b) => (b.usedAt < a.usedAt ? b : a));
      void this.retire(lru);
    }
    const tag = ++this.opened;
    const key = `${session.id}#${tag}`;
    const usedAt = this.options.clock.monotonic();
    const seenBytes = session.log.outputBytes;
    const base = { sessionId: session.id, key, tag, inFlight: 0, checkpointing: false, usedAt, seenBytes };
    const c = this.options.checkpoints.get(session.id);
    let t: Tracked;
    if (c !== undefined && c.seq <= session.log.head) {
      this.thread.post({ t: "open", id: key, tag, cols: c.cols, rows: c.rows, state: c.state });
      t = { ...base, seq: c.seq, offset: c.offset, saved: c.offset };
    } else {
      // The log's first event of a PTY session is its size (a resize event); the record's is a fallback.
      this.thread.post({ t: "open", id: key, tag, cols: session.record.cols ?? 80, rows: session.record.rows ?? 24 });
      t = { ...base, seq: 0, offset: 0, saved: 0 };
    }
    this.tracked.set(session.id, t);
    this.byKey.set(key, t);
    this.retired.delete(session.id);
    return t;
  }

  /** Quarantines the session whose output was at work when the thread stopped (see {@link unavailable}). */
  private blame(loss: ThreadLoss): void {
    if (loss.parsing === undefined) return;
    const t = [...this.tracked.values()].find((tracked) => tracked.tag === loss.parsing);
    if (t === undefined) return;
    const heapMb = this.options.threadHeapMb ?? SCREEN_THREAD_HEAP_MB;
    if (loss.outOfMemory) {
      this.quarantine(
        t.key,
        "out_of_memory",
        `its screen needs more memory than the screen thread may use (${heapMb} MiB)`,
      );
    } else {
      this.quarantine(t.key, "thread_stopped", `the screen thread stopped while parsing its output (${loss.reason})`);
    }
  }

  /**
   * Marks the session whose emulator is `key` unavailable, saying `what` happened: its screen is
   * not parsed again until the gateway restarts (else the same output would break the thread again
   * on every reopening), its log and every other screen go on (test/screen/hostile-screen-gateway.test.ts).
   */
  private quarantine(key: string, reason: ScreenQuarantineReason, what: string): void {
    const t = this.byKey.get(key);
    if (t === undefined) return;
    const id = t.sessionId;
    this.unavailable.set(
      id,
      `session ${id}'s screen is not kept until the gateway restarts: ${what}; read what it printed with GET /v1/sessions/${id}/output or its transcript`,
    );
    // A thread that stopped took the emulator with it; a live one is told to forget it.
    if (reason === "emulator_error") this.drop(id);
    else this.untrack(id);
    this.retired.delete(id);
    this.wakeParsed();
    this.options.onQuarantined?.(id, reason);
  }

  /** Resolves once the thread parsed some of what was fed (or stopped). */
  private parsed(): Promise<void> {
    return new Promise((resolve) => this.parsedWaiters.push(resolve));
  }

  private wakeParsed(): void {
    const waiters = this.parsedWaiters;
    this.parsedWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Posts the session's log past `t.seq` to the thread, up to `head` or about `budget` bytes; returns the bytes posted. */
  private feed(session: Session, t: Tracked, budget: number, head = session.log.head): number {
    const log = session.log;
    const allowed = budget;
    // Retention dropped events the checkpoint does not cover: go on from the oldest kept.
    if (t.seq + 1 < log.first) t.seq = log.first - 1;
    while (t.seq < head && budget > 0) {
      const page = log.read(t.seq, { types: SCREEN_EVENTS, maxBytes: Math.min(FEED_PAGE_BYTES, budget) });
      const parts: Uint8Array[] = [];
      const pieces: Array<number | FeedResize> = [];
      let size = 0;
      for (const entry of page.entries) {
        if (entry.seq > head) break;
        if (entry.type === "resize") {
          const { cols, rows } = JSON.parse(entry.json) as { cols: number; rows: number };
          pieces.push({ cols, rows });
        } else {
          const out = outputOf(entry as StoredEntry);
          if (out.offset + out.bytes.length <= t.offset) continue;
          const bytes = out.offset < t.offset ? out.bytes.subarray(t.offset - out.offset) : out.bytes;
          parts.push(bytes);
          pieces.push(bytes.length);
          size += bytes.length;
          t.offset = out.offset + out.bytes.length;
        }
      }
      t.seq = Math.min(page.next, head);
      if (pieces.length === 0) continue;
      // One copy, transferred to the thread. A small one shares Buffer's pool, which must not be
      // transferred: it is copied into a buffer of its own.
      const joined = Buffer.concat(parts, size);
      const bytes = joined.byteOffset === 0 && joined.buffer.byteLength === size ? joined : new Uint8Array(joined);
      this.thread.post({ t: "feed", id: t.key, bytes, pieces });
      t.inFlight += size;
      budget -= size;
    }
    return allowed - budget;
  }

  /** Saves the emulator's state as fed so far (if the parser is between sequences there; else at a later one). */
  private async checkpoint(t: Tracked): Promise<void> {
    if (t.checkpointing || t.offset === t.saved) return;
    t.checkpointing = true;
    const { seq, offset } = t;
    try {
      const c = await this.thread.checkpoint(t.key);
      if (c.state === undefined || this.closed) return;
      // An emulator retired meanwhile and opened again may have saved a later one.
      if ((this.options.checkpoints.get(t.sessionId)?.offset ?? -1) > offset) return;
      // Not for a session forgotten meanwhile, nor over the one a newer opening keeps.
      const current = this.byKey.get(t.key) === t || !this.tracked.has(t.sessionId);
      if (this.watched.has(t.sessionId) && current) {
        this.options.checkpoints.put(t.sessionId, {
          seq,
          offset,
          cols: c.cols,
          rows: c.rows,
          state: c.state,
          views: c.views,
          savedAt: this.options.clock.now(),
        });
      }
      t.saved = Math.max(t.saved, offset);
    } finally {
      t.checkpointing = false;
    }
  }

  /** Checkpoints an emulator not used for a while, then drops it. */
  private async retire(t: Tracked): Promise<void> {
    this.untrack(t.sessionId);
    this.retired.set(t.sessionId, t.offset);
    const saving = this.checkpointOf(t);
    this.thread.post({ t: "drop", id: t.key });
    await saving;
  }

  private checkpointOf(t: Tracked): Promise<void> {
    return this.checkpoint(t).catch(() => undefined); // the thread stopped: the older checkpoint stands
  }

  private untrack(sessionId: string): void {
    const t = this.tracked.get(sessionId);
    if (t === undefined) return;
    this.tracked.delete(sessionId);
    this.byKey.delete(t.key);
  }

  private drop(sessionId: string): void {
    const t = this.tracked.get(sessionId);
    this.untrack(sessionId);
    if (t !== undefined && !this.closed) this.thread.post({ t: "drop", id: t.key });
    this.lastOutput.delete(sessionId);
    this.retired.delete(sessionId);
  }
}

/** Whether the session's log holds an output or resize event after `seq`. */
function screenChangedSince(session: Session, seq: number): boolean {
  const log = session.log;
  // From the oldest event retention kept; a filtered read may stop short of the head (a page of scanned events).
  for (let since = Math.max(seq, log.first - 1); since < log.head;) {
    const page = log.read(since, { types: SCREEN_EVENTS, limit: 1 });
    if (page.entries.length > 0) return true;
    if (page.next <= since) return false;
    since = page.next;
  }
  return false;
}
