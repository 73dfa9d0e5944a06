import type { Clock, Timer } from "../core/clock.js";
import { outputOf } from "../log/output-entry.js";
import type { StoredEntry } from "../log/store.js";
import { SwitchboardError } from "../protocol/index.js";
import type { Session } from "../sessions/session.js";
import type { CheckpointStore } from "./checkpoint-store.js";
import { ScreenEmulator } from "./screen-emulator.js";
import type { ScreenView, ViewOptions } from "./screen-emulator.js";

/**
 * A checkpoint is saved once an emulator has parsed this much output since the last one: a
 * restart or a late viewer reparses at most about this much (plus one sweep's worth, below).
 */
export const SCREEN_CHECKPOINT_BYTES = 4 * 1024 * 1024;
/** A session whose output has been quiet this long gets a checkpoint of what it printed since the last. */
export const SCREEN_QUIET_MS = 2_000;
/** How often sessions are looked over for checkpoints due (either reason above). */
export const SCREEN_SWEEP_MS = 5_000;
/**
 * Parsing one sweep may do per session, on the event loop: a flood longer than a sweep would
 * otherwise be parsed whole on the thread that carries it (parsing runs at a few MB/s to tens
 * of MB/s, see docs/benchmarks.md). A session that prints faster falls behind until it is quiet.
 */
export const SCREEN_SWEEP_BUDGET_MS = 50;
/** An emulator no request or sweep used for this long is dropped; the next one starts from the checkpoint. */
export const SCREEN_IDLE_MS = 60_000;
/** Events one catch-up read takes from the log at a time (output and resizes); parsed between yields. */
const CATCH_UP_PAGE_BYTES = 256 * 1024;
const SCREEN_EVENTS: ReadonlySet<string> = new Set(["output", "resize"]);

/** A session's screen as a viewer sees it, and the output byte it reflects. */
export interface SessionScreen extends ScreenView {
  offset: number;
}

/** One session's live emulator: the log position it has parsed up to. */
interface Tracked {
  emulator: ScreenEmulator;
  seq: number;
  offset: number;
  /** Offset of the last checkpoint saved (or restored). */
  saved: number;
  usedAt: number;
}

export interface ScreenServiceOptions {
  checkpoints: CheckpointStore;
  clock: Clock;
  /** The sessions to look over for checkpoints due; none when absent (tests drive {@link sweep}). */
  sessions?: () => Iterable<Session>;
}

/**
 * The screens of PTY sessions, parsed from their logs when someone asks (and by the checkpoint
 * sweep), never on the output path: a session's emulator starts from its last checkpoint and
 * reads the log from there. See docs/protocol.md, "Screen".
 */
export class ScreenService {
  private readonly tracked = new Map<string, Tracked>();
  private readonly queues = new Map<string, Promise<void>>();
  /** Sessions whose removal this service listens for. */
  private readonly watched = new Set<string>();
  /** Per session, its output size when a sweep last saw it grow, and when. */
  private readonly lastOutput = new Map<string, { bytes: number; at: number }>();
  private timer: Timer | undefined;
  private closed = false;

  constructor(private readonly options: ScreenServiceOptions) {
    if (options.sessions !== undefined) this.arm();
  }

  /** The screen of `session` now, at the viewer's size. WRONG_SESSION_KIND for sessions without a PTY. */
  async screen(session: Session, view: ViewOptions): Promise<SessionScreen> {
    if (!session.record.pty) {
      throw new SwitchboardError(
        "WRONG_SESSION_KIND",
        `session ${session.id} has no terminal (${session.record.kind}${session.record.kind === "terminal" ? " without a PTY" : ""}); read its output with GET /v1/sessions/${session.id}/output`,
      );
    }
    return this.serialized(session.id, async () => {
      const t = await this.caughtUp(session);
      return { ...t.emulator.view(view), offset: t.offset };
    });
  }

  /**
   * Saves checkpoints that are due: for each session, once it printed SCREEN_CHECKPOINT_BYTES
   * since its last, or printed anything and then was quiet for SCREEN_QUIET_MS. Drops idle
   * emulators, and the checkpoints of sessions not in `sessions` (removed).
   */
  async sweep(sessions: Iterable<Session>): Promise<void> {
    const now = this.options.clock.monotonic();
    const listedIds: string[] = [];
    for (const session of sessions) {
      if (session.removed) continue;
      listedIds.push(session.id);
      // Ended sessions are looked over once, just after they end; later only if someone viewed them.
      const ended = session.record.endedAt;
      const recent = ended === null || ended >= this.options.clock.now() - 2 * SCREEN_SWEEP_MS;
      if (!session.record.pty || !(recent || this.tracked.has(session.id))) continue;
      const t = this.tracked.get(session.id);
      const saved = t?.saved ?? this.options.checkpoints.get(session.id)?.offset ?? 0;
      const behind = session.log.outputBytes - saved;
      if (behind <= 0) continue;
      const quiet = session.record.state !== "running" || this.quietSince(session) <= now - SCREEN_QUIET_MS;
      if (behind >= SCREEN_CHECKPOINT_BYTES || quiet) {
        await this.serialized(session.id, async () =>
          this.checkpoint(
            session.id,
            await this.caughtUp(session, this.options.clock.monotonic() + SCREEN_SWEEP_BUDGET_MS),
          ),
        );
      }
    }
    for (const [id, t] of this.tracked) {
      if (t.usedAt <= now - SCREEN_IDLE_MS) this.drop(id);
    }
    // A removed session's checkpoint goes with it.
    const listed = new Set(listedIds);
    for (const id of this.options.checkpoints.ids()) if (!listed.has(id)) this.forget(id);
  }

  /** Forgets a removed session's emulator and checkpoint. */
  forget(sessionId: string): void {
    if (this.closed) return;
    this.watched.delete(sessionId);
    this.drop(sessionId);
    this.options.checkpoints.remove(sessionId);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    for (const id of [...this.tracked.keys()]) this.drop(id);
    this.options.checkpoints.close();
  }

  private arm(): void {
    this.timer = this.options.clock.setTimeout(() => {
      void this.sweep(this.options.sessions!())
        .catch(() => undefined) // a session removed mid-sweep: the next sweep goes on without it
        .finally(() => {
          if (!this.closed) this.arm();
        });
    }, SCREEN_SWEEP_MS);
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

  /** Runs `run` after whatever runs for the session already: one catch-up at a time per emulator. */
  private serialized<T>(sessionId: string, run: () => Promise<T>): Promise<T> {
    const next = (this.queues.get(sessionId) ?? Promise.resolve()).then(run);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(sessionId, settled);
    void settled.then(() => {
      if (this.queues.get(sessionId) === settled) this.queues.delete(sessionId);
    });
    return next;
  }

  /** The session's emulator, having parsed everything its log has published (or up to the `deadline`, monotonic). */
  private async caughtUp(session: Session, deadline = Infinity): Promise<Tracked> {
    if (!this.watched.has(session.id)) {
      // A purge removes the screen at once, with the rest of what the session printed.
      this.watched.add(session.id);
      session.onRemoved(() => this.forget(session.id));
    }
    let t = this.tracked.get(session.id);
    if (t === undefined) {
      t = await this.start(session);
      this.tracked.set(session.id, t);
    }
    t.usedAt = this.options.clock.monotonic();
    const log = session.log;
    const head = log.head;
    let since = t.seq;
    if (since + 1 < log.first) {
      // Retention dropped events the checkpoint does not cover: go on from the oldest kept.
      since = log.first - 1;
    }
    while (since < head) {
      const page = log.read(since, { types: SCREEN_EVENTS, maxBytes: CATCH_UP_PAGE_BYTES });
      for (const entry of page.entries) {
        if (entry.seq > head) break;
        if (entry.type === "resize") {
          const { cols, rows } = JSON.parse(entry.json) as { cols: number; rows: number };
          // Output before a resize is parsed at the old size, as the PTY drew it.
          await t.emulator.settled();
          t.emulator.resize(cols, rows);
        } else {
          const out = outputOf(entry as StoredEntry);
          if (out.offset + out.bytes.length <= t.offset) continue;
          t.emulator.write(out.offset < t.offset ? out.bytes.subarray(t.offset - out.offset) : out.bytes);
          t.offset = out.offset + out.bytes.length;
        }
      }
      since = Math.min(page.next, head);
      t.seq = since;
      // Yields between pages, so a long catch-up does not hold the event loop.
      await t.emulator.settled();
      if (t.offset - t.saved >= SCREEN_CHECKPOINT_BYTES) this.checkpoint(session.id, t);
      if (this.options.clock.monotonic() >= deadline) break;
    }
    await t.emulator.settled();
    return t;
  }

  /** An emulator at the session's last checkpoint, or at the start of its log. */
  private async start(session: Session): Promise<Tracked> {
    const usedAt = this.options.clock.monotonic();
    const c = this.options.checkpoints.get(session.id);
    if (c !== undefined && c.seq <= session.log.head) {
      const emulator = await ScreenEmulator.restore(c.state, c.cols, c.rows);
      return { emulator, seq: c.seq, offset: c.offset, saved: c.offset, usedAt };
    }
    // The log's first event of a PTY session is its size (a resize event); the record's is a fallback.
    const emulator = new ScreenEmulator(session.record.cols ?? 80, session.record.rows ?? 24);
    return { emulator, seq: 0, offset: 0, saved: 0, usedAt };
  }

  /** Saves the emulator's state, where the parser is between sequences (else at a later catch-up). */
  private checkpoint(sessionId: string, t: Tracked): void {
    if (!t.emulator.atBoundary || t.offset === t.saved) return;
    this.options.checkpoints.put(sessionId, {
      seq: t.seq,
      offset: t.offset,
      cols: t.emulator.cols,
      rows: t.emulator.rows,
      state: t.emulator.checkpoint(),
      savedAt: this.options.clock.now(),
    });
    t.saved = t.offset;
  }

  private drop(sessionId: string): void {
    this.tracked.get(sessionId)?.emulator.dispose();
    this.tracked.delete(sessionId);
    this.lastOutput.delete(sessionId);
  }
}
