/** One `/ws/session` connection: its replay joined to live output, its steering frames and its control lease. */
import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";
import type { RawData, WebSocket } from "ws";
import type { LeaseChange } from "../core/control-lease.js";
import { binaryOutputFrame, outputFrame, terminalFrames } from "./terminal-frames.js";
import type { OutputSlice } from "../log/log-reader.js";
import type { LogEntry } from "../log/types.js";
import {
  CLOSE_CODES,
  LAG_SCREEN_QUEUE_BYTES,
  SwitchboardError,
  TerminalClientFrame,
  keystrokeFrame,
} from "../protocol/index.js";
import type { TerminalOutputMode, TerminalScreenFrame, TerminalServerFrame } from "../protocol/index.js";
import type { Session } from "../sessions/session.js";
import { actorOf } from "./auth.js";
import type { Identity } from "./auth.js";
import type { Revocation } from "./connection-counter.js";
import type { GatewayCore } from "./context.js";
import { SessionFeed } from "./feed.js";
import type { FeedPacing } from "./feed.js";
import type { CatchUpStep } from "./catch-up.js";
import { toSwitchboardError } from "./http.js";
import { LagJump } from "./lag-jump.js";
import { outputEnd } from "./screen-frame.js";
import { InputBudget } from "./input-budget.js";
import { steer, steerInput } from "./steering.js";
import type { Frame, LastFrame } from "./outbound-frames.js";
import { ClientFrameCheck, FRAME_FAILED, Outbox, controlLost, handleFrames } from "./ws-common.js";
import { WsForwarding } from "./ws-forwarding.js";

/** Checks every client frame of this endpoint (shared: it holds nothing per connection). */
const frameCheck = new ClientFrameCheck(TerminalClientFrame, "type", keystrokeFrame);

/** Replay is sent in frames of about this many bytes (one output event more at most). */
export const REPLAY_FRAME_BYTES = 256 * 1024;
const TERMINAL_TYPES: ReadonlySet<string> = new Set(["output", "exit", "lost"]);

export interface TerminalConnectionOptions {
  since: number | undefined;
  screen: TerminalScreenFrame | undefined;
  /** `?control=`, and the key its next connection takes the lease back with (`?clientKey=`). */
  control: { mode: "acquire" | "force" | null; reclaimKey: string | undefined };
  output: TerminalOutputMode;
  lastFrame: LastFrame<Frame[]>;
  /** `lag=screen`: the size its screens are drawn at (the PTY's when absent). */
  lag: { cols: number | undefined; rows: number | undefined } | undefined;
}

export class TerminalConnection {
  private readonly connId = randomBytes(16).toString("base64url");
  private readonly outbox: Outbox;
  private feed: SessionFeed | undefined;
  /** While replaying, the next byte to send; undefined once joined to live delivery. */
  private replayFrom: number | undefined;
  private readonly inputBucket: InputBudget;
  /** Steering frames when another node runs the session (cluster mode). */
  private readonly forwarding: WsForwarding;
  private readonly stopLeaseWatch: () => void;
  private readonly stopRemoveWatch: () => void;
  /** Stops counting this socket's token as watching. */
  private readonly unwatch: () => void;
  /** This connection's part in pacing catch-ups (its token's share, released when it closes). */
  private readonly pacing: FeedPacing;
  private readonly releaseShare: () => void;
  /** One replay frame, as a step of the gateway's catch-up scheduler (src/server/catch-up.ts). */
  private readonly replay: CatchUpStep = { step: () => this.replayStep() };
  private disposed = false;
  private readonly control: { mode: "acquire" | "force" | null; reclaimKey: string | undefined };
  private readonly output: TerminalOutputMode;
  private readonly lastFrame: LastFrame<Frame[]>;
  /** `lag=screen`: its jumps to the screen (src/server/lag-jump.ts). */
  private readonly lag: LagJump | undefined;
  /** Lets the screen thread hold this session's feed back again (ScreenService.keepCurrent). */
  private readonly releaseCurrent: () => void;
  /** Queued bytes past which output waits in the log (smaller for `lag=screen`: see LAG_SCREEN_QUEUE_BYTES). */
  private readonly budgetBytes: number;
  /** `connected` was sent: after a `lag=screen` screen the replay joins live output without it. */
  private joinedOnce = false;

  constructor(
    private readonly core: GatewayCore,
    private readonly ws: WebSocket,
    private readonly identity: Identity,
    private readonly session: Session,
    options: TerminalConnectionOptions,
  ) {
    const { since, screen } = options;
    this.control = options.control;
    this.output = options.output;
    this.lastFrame = options.lastFrame;
    this.releaseCurrent = options.lag === undefined ? () => undefined : core.screens.keepCurrent(session.id);
    this.budgetBytes =
      options.lag === undefined ? core.limits.queueBytes : Math.min(core.limits.queueBytes, LAG_SCREEN_QUEUE_BYTES);
    // Without `since` the viewer joins at the end of the output at once.
    const from = since ?? session.log.outputBytes;
    if (options.lag !== undefined) {
      const lag: LagJump = new LagJump(
        core,
        session,
        options.lag,
        {
          hold: () => this.hold(),
          apply: ({ frame }, skipped) => {
            this.send({ ...frame, skipped });
            this.replayFrom = frame.offset;
            this.pump();
          },
          resume: () => {
            this.replayFrom = lag.sentUpTo;
            this.pump();
          },
        },
        from,
      );
      this.lag = lag;
    }
    const { share, release } = core.catchUp.hold(identity.name);
    this.pacing = { scheduler: core.catchUp.scheduler, share };
    this.releaseShare = release;
    this.outbox = new Outbox(
      ws,
      core.limits.queueBytes,
      () => this.pump(),
      (_s, entries) => this.format(entries),
      () => core.metrics.wsReadsPaused.inc({ endpoint: "terminal" }),
      share,
    );
    this.inputBucket = new InputBudget(core.limits, core.clock, "connection", () =>
      this.outbox.holdReadsAfterRefusal(),
    );
    this.forwarding = new WsForwarding(core, identity, this.connId, this.inputBucket);
    this.unwatch = session.watch(identity.name);
    this.stopLeaseWatch = session.onLeaseChange((change) => this.onLeaseChange(change));
    this.stopRemoveWatch = session.onRemoved(() => {
      // Nothing more to read or steer: stop at once, and tell the viewer not to come back.
      this.dispose();
      this.ws.close(CLOSE_CODES.SESSION_GONE, "session deleted");
    });
    handleFrames({
      ws,
      core,
      endpoint: "terminal",
      connId: this.connId,
      handle: (data, isBinary) => this.onMessage(data, isBinary),
      tell: () => this.send({ type: "error", ...FRAME_FAILED }),
      dispose: () => this.dispose(),
    });

    // The screen first; the replay goes on from the byte it reflects.
    if (screen !== undefined) this.send(screen);
    this.replayFrom = from;
    this.pump();
  }

  /**
   * The connection closed. Its lease waits `control.reconnectGraceMs` for a reconnect with its
   * clientKey, unless `endLease`: the client closed it normally (1000, attach detaching) or was revoked.
   */
  dispose(endLease = false): void {
    if (this.disposed) return;
    this.disposed = true;
    this.feed?.close();
    this.stopLeaseWatch();
    this.stopRemoveWatch();
    this.unwatch();
    this.session.lease.disconnect(this.connId, endLease);
    this.forwarding.dispose(endLease);
    this.pacing.scheduler.cancel(this.replay);
    this.pacing.share.forget(this.replay);
    this.outbox.dispose();
    this.releaseShare();
    this.lag?.close();
    this.releaseCurrent();
  }

  /** Its token or sign-in was revoked: say so and close (see `REVOKED` in ws-common.ts). */
  revoke(why: Revocation): void {
    this.send({ type: "error", ...why });
    // No grace: the revoked sign-in cannot come back for its lease.
    this.dispose(true);
    this.ws.close(CLOSE_CODES.POLICY, "credentials revoked");
  }

  private send(frame: TerminalServerFrame): void {
    this.outbox.sendControl(JSON.stringify(frame));
  }

  /**
   * Replays output from the log while the outbox has room — so a long history never piles up in
   * memory (docs/architecture.md, guarantee 4) — one frame per step of the catch-up scheduler, and,
   * in the same synchronous step as the last read, sends `connected` and joins live delivery at the
   * end of the output: no byte in the gap, none twice (docs/architecture.md, guarantee 2). Called
   * again whenever the outbox drains.
   */
  private pump(): void {
    // A `lag=screen` viewer that fell behind is held while its screen is made.
    if (this.disposed || this.lag?.holding === true || this.lag?.check() === true) return;
    if (this.replayFrom === undefined) {
      this.feed?.pump();
      return;
    }
    // Nothing to replay (no `since`, or at the end): joins now, before any other frame.
    if (this.replayFrom >= this.session.log.outputBytes) this.join();
    else this.pacing.scheduler.request(this.replay);
  }

  private replayStep(): number {
    const from = this.replayFrom;
    // Closing: what is sent is dropped, not queued, so the budget would never stop the replay.
    if (this.disposed || from === undefined || !this.outbox.open) return 0;
    if (this.outbox.queuedBytes >= this.budgetBytes) return 0; // the drain pumps again
    if (this.pacing.share.full) {
      this.pacing.share.wait(this.replay);
      return 0;
    }
    if (from >= this.session.log.outputBytes) {
      this.join();
      return 1;
    }
    this.replayFrame(from);
    this.pacing.scheduler.request(this.replay);
    return (this.replayFrom ?? from) - from + 1;
  }

  /** Sends one replay frame starting at byte `from`, or says which bytes retention dropped. */
  private replayFrame(from: number): void {
    const log = this.session.log;
    const batch: Uint8Array[] = [];
    let size = 0;
    while (size < REPLAY_FRAME_BYTES && from + size < log.outputBytes) {
      let slices: OutputSlice[];
      try {
        slices = log.readOutput(from + size, REPLAY_FRAME_BYTES - size);
      } catch (error) {
        // Only the first read can hit the trimmed front of the log (readOutput says where output
        // starts again: the end of it when retention kept no output event at all).
        if (!(error instanceof SwitchboardError) || error.code !== "HISTORY_TRIMMED") throw error;
        const first = error.details?.["first"];
        this.skipTrimmed(from, typeof first === "number" ? first : log.outputBytes);
        return;
      }
      for (const slice of slices) {
        batch.push(slice.bytes);
        size += slice.bytes.length;
        if (size >= REPLAY_FRAME_BYTES) break;
      }
    }
    this.replayFrom = from + size;
    if (this.lag !== undefined) this.lag.sentUpTo = this.replayFrom;
    if (this.output === "binary") {
      this.outbox.sendControl(binaryOutputFrame("replay", from, batch, size));
      return;
    }
    const bytes = Buffer.concat(batch, size);
    // Not valid UTF-8 on its own (binary output, or a cut character): base64.
    this.outbox.sendControl(outputFrame("replay", this.replayFrom, bytes, !isUtf8(bytes)));
  }

  /** Retention dropped output this viewer asked to replay: say so (never a silent gap), then go on from `to`. */
  private skipTrimmed(from: number, to: number): void {
    this.core.metrics.resets.inc();
    this.send({
      type: "error",
      code: "HISTORY_TRIMMED",
      message: `output bytes ${from} to ${to} were dropped by retention; the replay goes on from byte ${to}`,
      from,
      to,
    });
    this.replayFrom = to;
    if (this.lag !== undefined) this.lag.sentUpTo = to;
  }

  /** `lag=screen`: a screen is being made; nothing is sent until it is (or LagJump resumes). */
  private hold(): void {
    this.feed?.close();
    this.feed = undefined;
    this.replayFrom = undefined;
    this.pacing.scheduler.cancel(this.replay);
    this.pacing.share.forget(this.replay);
  }

  /** The replay reached the end of the output: `connected`, then live delivery (or the exit of an ended session). */
  private join(): void {
    const session = this.session;
    this.replayFrom = undefined;
    const first = !this.joinedOnce;
    this.joinedOnce = true;
    if (first) {
      this.send({
        type: "connected",
        mode: session.record.pty ? "pty" : "pipe",
        session_id: session.id,
        offset: session.log.outputBytes,
      });
    }
    const owner = this.forwarding.owner(session.id);
    const { mode, reclaimKey } = this.control;
    if (!first) {
      // Back from a `lag=screen` screen: control was settled at the first join.
    } else if (mode !== null && session.running && owner !== undefined) {
      // Another node runs it: the lease is taken there, and released there when this connection closes.
      const acquire = { action: "acquire", force: mode === "force" };
      const lease = { via: "attach" as const, ...(reclaimKey !== undefined ? { reclaimKey } : {}) };
      this.forwarding.run(owner, "control", session.id, acquire, lease).catch((error: unknown) => this.refuse(error));
    } else if (mode !== null && session.running) {
      // `?control=acquire` takes the lease if free (else an error frame, and the viewer stays
      // read-only); `?control=force` takes it over. Released when this connection closes (after
      // the grace period with `?clientKey=`, see ControlLease.disconnect).
      try {
        const actor = { ...actorOf(this.identity, this.connId), via: "attach" as const };
        session.lease.acquire(
          { key: this.connId, actor, ...(reclaimKey !== undefined ? { reclaimKey } : {}) },
          mode === "force",
        );
      } catch (error) {
        this.send({ ...toSwitchboardError(error).toJSON(), type: "error" });
      }
    }
    // Ended, and its exit is published: nothing more comes (else the exit comes live).
    if (!session.running && session.log.settled) {
      const r = session.record;
      this.send({
        type: "exit",
        exit_code: r.exitCode,
        signal: r.signal,
        state: r.state === "lost" ? "lost" : "exited",
      });
      this.ws.close(CLOSE_CODES.NORMAL, "session ended");
      return;
    }
    const outbox = this.outbox;
    this.feed = new SessionFeed(
      session.log,
      session.log.head,
      {
        get queuedBytes() {
          return outbox.queuedBytes;
        },
        budgetBytes: this.budgetBytes,
        get open() {
          return outbox.open;
        },
        deliver: (entries, live) => {
          if (this.lag !== undefined) this.lag.sentUpTo = outputEnd(entries, this.lag.sentUpTo);
          outbox.deliver(session.id, entries as LogEntry[], live);
        },
        reset: () => this.resetToLive(),
      },
      TERMINAL_TYPES,
      { onCatchUp: () => this.core.metrics.catchUps.inc() },
      this.pacing,
    );
    this.feed.pump();
  }

  /** Retention dropped output this viewer needed while it lagged: say so, then follow live output. */
  private resetToLive(): void {
    this.core.metrics.resets.inc();
    this.send({
      type: "error",
      code: "HISTORY_TRIMMED",
      message: "output was dropped by retention while this viewer lagged; continuing with newer output",
    });
  }

  private format(entries: readonly LogEntry[]): Frame[] {
    // One live output event: the frame every viewer gets (exit is per connection: it closes it).
    const only = entries.length === 1 ? entries[0]! : undefined;
    if (only?.type === "output") return this.lastFrame.get(only, (e) => this.buildFrames([e]));
    return this.buildFrames(entries);
  }

  private buildFrames(entries: readonly LogEntry[]): Frame[] {
    return terminalFrames(entries, this.output === "binary", () => this.ws.close(CLOSE_CODES.NORMAL, "session ended"));
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.disposed) return;
    const checked = frameCheck.check(data, isBinary);
    if (!checked.ok) {
      this.send({ type: "error", code: checked.code, message: checked.message });
      return;
    }
    const frame = checked.frame;
    const owner = frame.type === "ping" ? undefined : this.forwarding.owner(this.session.id);
    if (owner !== undefined && frame.type !== "ping") {
      const { type, ...body } = frame;
      try {
        const answer = this.forwarding.run(owner, type === "stdin" ? "input" : type, this.session.id, body);
        answer.catch((error: unknown) => this.refuse(error));
      } catch (error) {
        this.refuse(error);
      }
      return;
    }
    const by = actorOf(this.identity, this.connId);
    try {
      switch (frame.type) {
        case "stdin": {
          steerInput(this.core.sessions, this.identity, this.connId, this.session.id, frame, this.inputBucket, by);
          break;
        }
        case "signal":
          steer(
            this.core.sessions,
            this.identity,
            this.connId,
            this.session.id,
            { op: "signal", signal: frame.signal },
            by,
          );
          break;
        case "resize":
          steer(
            this.core.sessions,
            this.identity,
            this.connId,
            this.session.id,
            { op: "resize", cols: frame.cols, rows: frame.rows },
            by,
          );
          break;
        case "ping":
          if (this.forwarding.owner(this.session.id) !== undefined) this.forwarding.renew(this.session.id);
          else this.session.lease.touch(this.connId);
          this.send({ type: "pong" });
          break;
      }
    } catch (error) {
      this.refuse(error);
    }
  }

  private refuse(error: unknown): void {
    if (this.disposed) return;
    const e = toSwitchboardError(error);
    if (e.code === "INTERNAL") this.core.logger.error({ err: error }, "terminal frame failed");
    this.send({ ...e.toJSON(), type: "error" });
  }

  private onLeaseChange(change: LeaseChange): void {
    if (change.previous?.key !== this.connId) return;
    this.forwarding.lost(this.session.id);
    if (change.action === "expired") {
      // The connection stays a viewer; it may acquire control again by reconnecting with ?control=.
      this.send({ type: "error", ...controlLost(change) });
      return;
    }
    if (change.action !== "taken-over") return;
    this.send({ type: "error", ...controlLost(change) });
    // 4001: do not auto-reconnect into a fight over control.
    this.ws.close(CLOSE_CODES.CONTROL_LOST, "control taken over");
  }
}
