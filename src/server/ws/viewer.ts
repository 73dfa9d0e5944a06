/**
 * One consumer's view of one session, from subscribe to close: what every transport (SSE,
 * `/v1/ws`, `/ws/session`, plugin subscriptions) does the same way. The transport keeps only
 * its encoding and its socket, behind a {@link Sink}.
 */
import type { OutputSlice } from "../../log/log-reader.js";
import type { SessionLog } from "../../log/session-log.js";
import type { LogEntry } from "../../log/types.js";
import { LAG_SCREEN_QUEUE_BYTES } from "../../protocol/index.js";
import { isPublicError } from "../../protocol/errors.js";
import type { Session } from "../../sessions/session.js";
import type { CatchUpStep } from "./catch-up.js";
import type { GatewayCore } from "../context.js";
import { SessionFeed } from "./feed.js";
import type { FeedHooks, FeedPacing } from "./feed.js";
import { LagJump } from "./lag-jump.js";
import type { GatewayMetrics } from "../ops/metrics.js";
import { outputAfter, outputEnd } from "./screen-frame.js";
import type { OutputSink, Sink } from "./sink.js";

/** An output replay (`/ws/session`) is sent in frames of about this many bytes (one output event more at most). */
export const REPLAY_FRAME_BYTES = 256 * 1024;

/** Where a viewer starts: after seq `seq` (events), or at output byte `offset` (raw output first). */
export type ViewerStart =
  | { seq: number; sink: Sink; pacing?: FeedPacing | undefined }
  | { offset: number; sink: OutputSink; pacing: FeedPacing };

export type ViewerOptions = ViewerStart & {
  core: GatewayCore;
  log: SessionLog;
  /** The session of `log`: its removal is watched and `watcher` counted as watching it. */
  session?: Session | undefined;
  /** The token name counted as watching the session while the viewer is open. */
  watcher?: string | undefined;
  /** Only these event types are delivered (the cursor passes over the others). */
  types?: ReadonlySet<string> | undefined;
  /** Counts its catch-ups and resets (connections; a plugin's subscription is not one). */
  metrics?: Pick<GatewayMetrics, "catchUps" | "resets"> | undefined;
  hooks?: FeedHooks | undefined;
  /** Queued bytes past which it reads from the log: `limits.queueBytes` when absent. */
  budgetBytes?: number | undefined;
  /** `lag: "screen"` (a PTY session): the size its screens are drawn at. */
  lag?: { cols: number | undefined; rows: number | undefined } | undefined;
};

/**
 * Replay, then live delivery, of one session's log to one consumer: a {@link SessionFeed} over
 * the log (rebuilt from the oldest kept event when retention overtook it), its share of the
 * gateway's catch-up pacing, backpressure from its sink's queue, the session's removal and, for
 * `lag: "screen"`, the jump to the screen (src/server/ws/lag-jump.ts). Positions only move forward
 * (docs/architecture.md, guarantees 1, 2 and 4). Nothing is sent before {@link start}.
 */
export class Viewer {
  private feed: SessionFeed | undefined;
  private readonly log: SessionLog;
  private readonly sink: Sink;
  /** Set when the viewer starts at an output byte. */
  private readonly output: OutputSink | undefined;
  private readonly pacing: FeedPacing | undefined;
  private readonly feedHooks: FeedHooks;
  /** While replaying output, the next byte to send; undefined otherwise. */
  private replayFrom: number | undefined;
  private joinedOnce = false;
  /** One output replay frame, as a step of the gateway's catch-up scheduler (src/server/ws/catch-up.ts). */
  private readonly replayStep: CatchUpStep = { step: () => this.replayOne() };
  /** The seq from which retention dropped what the first read needed, told at {@link start}. */
  private trimmedAtStart: number | undefined;
  private readonly lag: LagJump | undefined;
  private readonly releases: Array<() => void> = [];
  private closed = false;
  /** Queued bytes past which the viewer reads from the log (smaller for `lag: "screen"`). */
  readonly budgetBytes: number;

  constructor(private readonly options: ViewerOptions) {
    const { core, session, sink } = options;
    this.log = options.log;
    this.sink = sink;
    this.output = "offset" in options ? options.sink : undefined;
    this.pacing = options.pacing;
    const budget = options.budgetBytes ?? core.limits.queueBytes;
    this.budgetBytes = options.lag === undefined ? budget : Math.min(budget, LAG_SCREEN_QUEUE_BYTES);
    const hooks = options.hooks ?? {};
    this.feedHooks = {
      ...hooks,
      onCatchUp: () => {
        options.metrics?.catchUps.inc();
        hooks.onCatchUp?.();
      },
      // The feed tells its sink next (the sink is the transport's: nothing stands between them).
      onReset: () => {
        options.metrics?.resets.inc();
        hooks.onReset?.();
      },
      ...(options.lag !== undefined
        ? {
            onDeliver: (entries: readonly LogEntry[]) => {
              if (this.lag !== undefined) this.lag.sentUpTo = outputEnd(entries, this.lag.sentUpTo);
            },
          }
        : {}),
    };
    if ("seq" in options) this.trimmedAtStart = this.openFeed(options.seq);
    else this.replayFrom = options.offset;
    if (session !== undefined && options.watcher !== undefined) this.releases.push(session.watch(options.watcher));
    if (session !== undefined && sink.removed !== undefined) {
      const removed = sink.removed.bind(sink);
      this.releases.push(
        session.onRemoved(() => {
          this.close();
          removed();
        }),
      );
    }
    this.lag = session !== undefined && options.lag !== undefined ? this.lagJump(session, options.lag) : undefined;
  }

  /** The last seq delivered or passed over (a viewer that started at an output byte: once live). */
  get cursor(): number {
    return this.feed?.cursor ?? 0;
  }

  /** Sends what the viewer starts with: a retention gap at its start, then the replay. */
  start(): void {
    if (this.trimmedAtStart !== undefined) this.trimmed(this.log.first, this.log.head, this.trimmedAtStart);
    this.trimmedAtStart = undefined;
    if (this.output !== undefined) this.pump();
    else this.feed?.pump();
  }

  /**
   * Delivers what the sink has room for (call again when it drains); a `lag: "screen"` viewer
   * that fell behind is held while its screen is made.
   */
  pump(): void {
    if (this.closed || this.log.closed || this.lag?.holding === true || this.lag?.check() === true) return;
    if (this.replayFrom === undefined) this.feed?.pump();
    // Nothing to replay: joins now, before any other frame.
    else if (this.replayFrom >= this.log.outputBytes) this.join();
    else this.pacing?.scheduler.request(this.replayStep);
  }

  /** Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.feed?.close();
    this.stopReplay();
    this.lag?.close();
    for (const release of this.releases.splice(0)) release();
  }

  /** A feed from after `seq` (from the oldest kept event when retention dropped it); returns `seq` then. */
  private openFeed(seq: number): number | undefined {
    const options = {
      budgetBytes: this.budgetBytes,
      types: this.options.types,
      hooks: this.feedHooks,
      pacing: this.options.pacing,
      // A viewer that resumes by byte offset may see output before it is durable, where the log shows it early.
      early: this.output !== undefined,
    };
    try {
      this.feed = new SessionFeed(this.log, seq, this.sink, options);
      return undefined;
    } catch (error) {
      if (!isPublicError(error) || error.code !== "HISTORY_TRIMMED") throw error;
      this.feed = new SessionFeed(this.log, this.log.first - 1, this.sink, options);
      return seq;
    }
  }

  private trimmed(first: number, head: number, from: number): void {
    this.options.metrics?.resets.inc();
    this.sink.trimmed(first, head, from);
  }

  private lagJump(session: Session, size: { cols: number | undefined; rows: number | undefined }): LagJump {
    const { core } = this.options;
    this.releases.push(core.screens.keepCurrent(session.id));
    const sentUpTo = this.output === undefined ? outputAfter(session, this.cursor) : (this.replayFrom ?? 0);
    const lag: LagJump = new LagJump(
      core,
      session,
      size,
      {
        hold: () => {
          this.feed?.close();
          this.stopReplay();
        },
        apply: (screen, skipped) => {
          this.sink.screen?.(screen, skipped);
          this.restart(this.output === undefined ? screen.seq : screen.frame.offset);
        },
        resume: () => this.restart(this.output === undefined ? this.cursor : lag.sentUpTo),
      },
      sentUpTo,
    );
    return lag;
  }

  /** After a screen, or where a held viewer stopped: an output byte, or a seq. */
  private restart(position: number): void {
    if (this.output !== undefined) {
      this.replayFrom = position;
      this.pump();
      return;
    }
    const trimmedFrom = this.openFeed(position);
    if (trimmedFrom !== undefined) this.trimmed(this.log.first, this.log.head, trimmedFrom);
    this.feed?.pump();
  }

  private stopReplay(): void {
    this.replayFrom = undefined;
    this.pacing?.scheduler.cancel(this.replayStep);
    this.pacing?.share.forget(this.replayStep);
  }

  private replayOne(): number {
    const from = this.replayFrom;
    // Closing: what is sent is dropped, not queued, so the budget would never stop the replay.
    if (this.closed || from === undefined || this.sink.open === false || this.log.closed) return 0;
    if (this.sink.queuedBytes >= this.budgetBytes) return 0; // the drain pumps again
    if (this.pacing?.share.full === true) {
      this.pacing.share.wait(this.replayStep);
      return 0;
    }
    if (from >= this.log.outputBytes) {
      this.join();
      return 1;
    }
    this.replayFrame(from);
    this.pacing?.scheduler.request(this.replayStep);
    return (this.replayFrom ?? from) - from + 1;
  }

  /** Hands one replay frame from byte `from` to the sink, or says which bytes retention dropped. */
  private replayFrame(from: number): void {
    const log = this.log;
    const chunks: Uint8Array[] = [];
    let size = 0;
    while (size < REPLAY_FRAME_BYTES && from + size < log.outputBytes) {
      let slices: OutputSlice[];
      try {
        slices = log.readOutput(from + size, REPLAY_FRAME_BYTES - size);
      } catch (error) {
        // Only the first read can hit the trimmed front of the log (readOutput says where output
        // starts again: the end of it when retention kept no output event at all).
        if (!isPublicError(error) || error.code !== "HISTORY_TRIMMED") throw error;
        const first = error.details?.["first"];
        this.skipOutput(from, typeof first === "number" ? first : log.outputBytes);
        return;
      }
      for (const slice of slices) {
        chunks.push(slice.bytes);
        size += slice.bytes.length;
        if (size >= REPLAY_FRAME_BYTES) break;
      }
    }
    this.replayFrom = from + size;
    if (this.lag !== undefined) this.lag.sentUpTo = this.replayFrom;
    this.output?.replay(from, chunks, size);
  }

  /** Retention dropped output the replay needed: told (never a silent gap), then on from `to`. */
  private skipOutput(from: number, to: number): void {
    this.options.metrics?.resets.inc();
    this.output?.trimmedOutput(from, to);
    this.replayFrom = to;
    if (this.lag !== undefined) this.lag.sentUpTo = to;
  }

  /** The output replay reached the end: the sink's join, then live events from the head. */
  private join(): void {
    this.replayFrom = undefined;
    const first = !this.joinedOnce;
    this.joinedOnce = true;
    if (this.output?.joined(first) !== true || this.closed) return;
    this.openFeed(this.log.head);
    this.feed?.pump();
  }
}
