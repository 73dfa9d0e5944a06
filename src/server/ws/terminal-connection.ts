/** One `/ws/session` connection: its replay joined to live output, its steering frames and its control lease. */
import { isUtf8 } from "node:buffer";
import type { WebSocket } from "ws";
import type { LeaseChange } from "../../core/control-lease.js";
import {
  binaryOutputFrame,
  outputFrame,
  smallBinaryFrame,
  smallTextFrame,
  terminalCodec,
  terminalFrames,
} from "./terminal-frames.js";
import type { LogEntry } from "../../log/types.js";
import { CLOSE_CODES } from "../../protocol/index.js";
import type {
  TerminalClientFrame,
  TerminalOutputMode,
  TerminalScreenFrame,
  TerminalServerFrame,
} from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import { shuttingDown } from "../../sessions/session-manager.js";
import { actorOf } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore } from "../context.js";
import { toSwitchboardError } from "../http/http.js";
import { steer, steerInput, steerInputBytes } from "../steering.js";
import type { Frame, LastFrame } from "./outbound-frames.js";
import { OutputInFlight } from "./output-in-flight.js";
import { outputEnd } from "./screen-frame.js";
import { Viewer } from "./viewer.js";
import type { OutputSink } from "./sink.js";
import { controlLost } from "./ws-common.js";
import { WsConnection } from "./connection.js";

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

export class TerminalConnection extends WsConnection<TerminalClientFrame, TerminalServerFrame> {
  /** The replay from the asked-for byte, then live output (src/server/ws/viewer.ts). */
  private readonly viewer: Viewer;
  private readonly stopLeaseWatch: () => void;
  private readonly control: { mode: "acquire" | "force" | null; reclaimKey: string | undefined };
  private readonly output: TerminalOutputMode;
  private readonly lastFrame: LastFrame<Frame[]>;
  /** With `lag=screen`: the output sent past what the client said it took (`taken`). */
  private readonly inFlight: OutputInFlight | undefined;

  constructor(
    core: GatewayCore,
    ws: WebSocket,
    identity: Identity,
    private readonly session: Session,
    options: TerminalConnectionOptions,
  ) {
    super({ core, ws, identity, codec: terminalCodec });
    this.control = options.control;
    this.output = options.output;
    this.lastFrame = options.lastFrame;
    this.inFlight = options.lag === undefined ? undefined : new OutputInFlight();
    this.stopLeaseWatch = session.onLeaseChange((change) => this.onLeaseChange(change));
    this.viewer = new Viewer({
      core,
      log: session.log,
      session,
      watcher: identity.name,
      // Without `since` the viewer joins at the end of the output at once.
      offset: options.since ?? session.log.outputBytes,
      sink: this.sink(),
      pacing: this.pacing,
      types: TERMINAL_TYPES,
      metrics: core.metrics,
      lag: options.lag,
    });

    // The screen first; the replay goes on from the byte it reflects.
    if (options.screen !== undefined) this.send(options.screen);
    this.viewer.start();
  }

  /**
   * Its viewer and lease watch; its lease waits `control.reconnectGraceMs` for a reconnect with
   * its clientKey, unless `endLease`: the client closed it normally (1000, attach detaching) or was revoked.
   */
  protected release(endLease: boolean): void {
    this.viewer.close();
    this.stopLeaseWatch();
    this.session.lease.disconnect(this.connId, endLease);
  }

  protected pump(): void {
    this.viewer.pump();
  }

  /** How the viewer's replay, output and jumps reach this socket. */
  private sink(): OutputSink {
    const outbox = this.outbox;
    const session = this.session;
    const flight = this.inFlight;
    return {
      get queuedBytes() {
        return outbox.queuedBytes + (flight?.bytes ?? 0);
      },
      get open() {
        return outbox.open;
      },
      deliver: (entries, live) => {
        if (flight !== undefined) flight.sent = outputEnd(entries, flight.sent ?? 0);
        outbox.deliver(session.id, entries, live);
      },
      replay: (from, chunks, size) => {
        if (flight !== undefined) flight.sent = Math.max(flight.sent ?? 0, from + size);
        if (this.output === "binary") {
          outbox.sendControl(binaryOutputFrame("replay", from, chunks, size));
          return;
        }
        const bytes = Buffer.concat(chunks, size);
        // Not valid UTF-8 on its own (binary output, or a cut character): base64.
        outbox.sendControl(outputFrame("replay", from + size, bytes, !isUtf8(bytes)));
      },
      // Never a silent gap: the replay goes on after what retention dropped.
      trimmedOutput: (from, to) =>
        this.send({
          type: "error",
          code: "HISTORY_TRIMMED",
          message: `output bytes ${from} to ${to} were dropped by retention; the replay goes on from byte ${to}`,
          from,
          to,
        }),
      trimmed: () =>
        this.send({
          type: "error",
          code: "HISTORY_TRIMMED",
          message: "output was dropped by retention while this viewer lagged; continuing with newer output",
        }),
      joined: (first) => this.join(first),
      removed: () => {
        // Nothing more to read or steer: stop at once, and tell the viewer not to come back.
        this.dispose();
        this.ws.close(CLOSE_CODES.SESSION_GONE, "session deleted");
      },
      screen: ({ frame }, skipped) => {
        if (flight !== undefined) flight.sent = Math.max(flight.sent ?? 0, frame.offset);
        this.send({ ...frame, skipped });
      },
    };
  }

  /**
   * The replay reached the end of the output: `connected` and control the first time; then live
   * output, or the exit of an ended session (false: nothing follows).
   */
  private join(first: boolean): boolean {
    const session = this.session;
    if (first) {
      this.send({
        type: "connected",
        mode: session.record.pty ? "pty" : "pipe",
        session_id: session.id,
        offset: session.log.outputBytes,
        binary_input: true,
        lag_taken: true,
      });
      this.takeControl();
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
      return false;
    }
    return true;
  }

  /** `?control=`, at the first join (a `lag=screen` viewer joins again after each screen). */
  private takeControl(): void {
    const session = this.session;
    const owner = this.forwarding.owner(session.id);
    const { mode, reclaimKey } = this.control;
    if (mode !== null && session.running && owner !== undefined) {
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
  }

  protected format(_session: string, entries: readonly LogEntry[]): Frame[] {
    // One live output event: the frame every viewer gets (exit is per connection: it closes it).
    const only = entries.length === 1 ? entries[0]! : undefined;
    if (only?.type === "output") return this.lastFrame.get(only, (e) => this.liveFrames(e));
    return this.buildFrames(entries);
  }

  /** One live output entry's frames: a keystroke's echo framed by hand. */
  private liveFrames(entry: LogEntry): Frame[] {
    const small = this.output === "json" ? smallTextFrame(entry) : smallBinaryFrame(entry);
    return small !== undefined ? [small] : this.buildFrames([entry]);
  }

  private buildFrames(entries: readonly LogEntry[]): Frame[] {
    return terminalFrames(entries, this.output === "binary", () => this.ws.close(CLOSE_CODES.NORMAL, "session ended"));
  }

  protected take(frame: TerminalClientFrame): void {
    // What the client took is this connection's own, whoever runs the session, and stopping or not.
    if (frame.type === "taken") {
      if (this.inFlight?.taken(frame.offset) === true) this.viewer.pump();
      return;
    }
    // A stopping gateway changes nothing more (SHUTTING_DOWN: retry against the next one).
    if (frame.type !== "ping" && this.core.sessions.isStopping) {
      this.refuse(shuttingDown());
      return;
    }
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
          steerInput(
            this.core.sessions,
            this.identity,
            this.connId,
            this.session.id,
            frame,
            this.inputBudget,
            by,
            this.refuseLater,
          );
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
          this.renewLease(this.session.id, this.session);
          this.send({ type: "pong" });
          break;
      }
    } catch (error) {
      this.refuse(error);
    }
  }

  /**
   * A binary message is input: its bytes as they are, as a `stdin` frame's `data` with
   * `enc: "base64"` would be, without the JSON (docs/protocol.md, "Binary input").
   */
  protected override takeBytes(data: Buffer): boolean {
    if (this.core.sessions.isStopping || this.forwarding.owner(this.session.id) !== undefined) {
      // Refused, or forwarded to the node that runs it, as that frame.
      this.take({ type: "stdin", data: data.toString("base64"), enc: "base64" });
      return true;
    }
    try {
      const by = actorOf(this.identity, this.connId);
      steerInputBytes(
        this.core.sessions,
        this.identity,
        this.connId,
        this.session.id,
        data,
        false,
        this.inputBudget,
        by,
        this.refuseLater,
      );
    } catch (error) {
      this.refuse(error);
    }
    return true;
  }

  /** Input refused after it was taken (it waited for the session's holder): an error frame, as at once. */
  private readonly refuseLater = (error: unknown): void => this.refuse(error);

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
