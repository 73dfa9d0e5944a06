/**
 * One WebSocket connection's life, whatever its endpoint: its outbox and the catch-up share it
 * counts against, its input budget, its steering through a session's owner (cluster mode), its
 * frames handled so that none can end the gateway, its leases renewed and released, and its
 * end (dispose, revoke). `/v1/ws` (src/server/ws/ws-multiplex.ts) and `/ws/session`
 * (src/server/ws/terminal-connection.ts) differ only in their frames: a {@link FrameCodec} each, and
 * what a checked frame does.
 */
import { randomBytes } from "node:crypto";
import type { RawData, WebSocket } from "ws";
import { CLOSE_CODES } from "../../protocol/index.js";
import type { SwitchboardError } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import type { Identity } from "../identity/identity.js";
import type { Revocation } from "./connection-counter.js";
import type { GatewayCore } from "../context.js";
import type { FeedPacing } from "./feed.js";
import { InputBudget } from "../input-budget.js";
import { FRAME_FAILED, Outbox, handleFrames } from "./ws-common.js";
import type { CheckedFrame, ClientFrameCheck } from "./ws-common.js";
import { WsForwarding } from "../cluster/ws-forwarding.js";
import type { Frame } from "./outbound-frames.js";
import type { LogEntry } from "../../log/types.js";

/** The fields of an error frame on either endpoint: code, message and what the error details. */
export type ErrorFields = ReturnType<SwitchboardError["toJSON"]>;

/**
 * How one endpoint's frames are read and written: `op` frames on `/v1/ws`
 * (src/server/ws/multiplex-frames.ts), `type` frames on `/ws/session` (src/server/ws/terminal-frames.ts).
 */
export interface FrameCodec<ClientFrame, ServerFrame> {
  readonly endpoint: "multiplex" | "terminal";
  /** Checks every client frame of the endpoint (shared: it holds nothing per connection). */
  readonly check: ClientFrameCheck<ClientFrame>;
  /** An error frame with `fields`, its tag first. */
  error(fields: ErrorFields): ServerFrame;
  /** The answer to a client frame its check refused (the connection stays up). */
  refused(checked: Extract<CheckedFrame<ClientFrame>, { ok: false }>): ServerFrame;
}

export interface WsConnectionOptions<ClientFrame, ServerFrame> {
  core: GatewayCore;
  ws: WebSocket;
  identity: Identity;
  codec: FrameCodec<ClientFrame, ServerFrame>;
}

/**
 * The lifecycle both WebSocket endpoints share. A subclass handles checked frames
 * ({@link take}) and releases what it holds besides ({@link release}); {@link dispose} is
 * idempotent and runs once, whoever ends the connection (the client, a revocation, a failed frame).
 */
export abstract class WsConnection<ClientFrame, ServerFrame> {
  readonly connId = randomBytes(16).toString("base64url");
  protected readonly core: GatewayCore;
  protected readonly ws: WebSocket;
  protected readonly identity: Identity;
  protected readonly outbox: Outbox;
  /** Input bytes and frames per second (`limits.inputBytesPerSecond`, `limits.inputFramesPerSecond`). */
  protected readonly inputBudget: InputBudget;
  /** Steering frames for sessions another node runs (cluster mode). */
  protected readonly forwarding: WsForwarding;
  /** This connection's part in pacing catch-ups (its token's share, released when it closes). */
  protected readonly pacing: FeedPacing;
  private readonly releaseShare: () => void;
  private readonly codec: FrameCodec<ClientFrame, ServerFrame>;
  private ended = false;

  constructor(o: WsConnectionOptions<ClientFrame, ServerFrame>) {
    const { core, ws, identity, codec } = o;
    this.core = core;
    this.ws = ws;
    this.identity = identity;
    this.codec = codec;
    const { share, release } = core.catchUp.hold(identity.principal);
    this.pacing = { scheduler: core.catchUp.scheduler, share };
    this.releaseShare = release;
    this.outbox = new Outbox(
      ws,
      core.limits.queueBytes,
      () => this.pump(),
      (session, entries) => this.format(session, entries),
      () => core.metrics.wsReadsPaused.inc({ endpoint: codec.endpoint }),
      share,
    );
    this.inputBudget = new InputBudget(core.limits, core.clock, "connection", () =>
      this.outbox.holdReadsAfterRefusal(),
    );
    this.forwarding = new WsForwarding(core, identity, this.connId, this.inputBudget);
    handleFrames({
      ws,
      core,
      endpoint: codec.endpoint,
      connId: this.connId,
      handle: (data, isBinary) => this.receive(data, isBinary),
      tell: () => this.send(codec.error({ ...FRAME_FAILED })),
      dispose: () => this.dispose(),
      holdReads: () => this.outbox.holdReads(),
    });
  }

  /** True once the connection ended: nothing more is sent or handled. */
  protected get disposed(): boolean {
    return this.ended;
  }

  /**
   * The connection closed. Its leases wait `control.reconnectGraceMs` for a reconnect with their
   * clientKey, unless `endLeases`: the client closed it normally (1000) or was revoked.
   */
  dispose(endLeases = false): void {
    if (this.ended) return;
    this.ended = true;
    this.release(endLeases);
    this.forwarding.dispose(endLeases);
    this.outbox.dispose();
    this.releaseShare();
  }

  /** Its token or sign-in was revoked: say so and close (see `REVOKED` in ws-common.ts). */
  revoke(why: Revocation): void {
    this.send(this.codec.error({ ...why }));
    // No grace: the revoked sign-in cannot come back for its leases.
    this.dispose(true);
    this.ws.close(CLOSE_CODES.POLICY, "credentials revoked");
  }

  protected send(frame: ServerFrame): void {
    this.outbox.sendControl(JSON.stringify(frame));
  }

  /** An error frame (a refusal, a lost lease) on this endpoint's terms. */
  protected sendError(fields: ErrorFields): void {
    this.send(this.codec.error(fields));
  }

  /** Renews this connection's lease of a session if it holds it: here, or through the session's owner. */
  protected renewLease(sessionId: string, session: Session | undefined = this.core.sessions.get(sessionId)): void {
    if (this.forwarding.owner(sessionId) !== undefined) this.forwarding.renew(sessionId);
    else session?.lease.touch(this.connId);
  }

  /** A client frame that passed its endpoint's check. */
  protected abstract take(frame: ClientFrame): void;

  /**
   * A binary message, where the endpoint gives it a meaning (`/ws/session`: input). False: it is
   * refused as a frame that is not JSON text.
   */
  protected takeBytes(_data: Buffer): boolean {
    return false;
  }

  /** The outbox drained: pump what the connection's viewers hold back. */
  protected abstract pump(): void;

  /** Live log entries of a session as this endpoint frames them (see Outbox). */
  protected abstract format(session: string, entries: readonly LogEntry[]): Frame | Frame[];

  /** Releases what the subclass holds (viewers, lease watches, appends), first thing at {@link dispose}. */
  protected abstract release(endLeases: boolean): void;

  private receive(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    if (isBinary && this.takeBytes(bufferOf(data))) return;
    const checked = this.codec.check.check(data, isBinary);
    if (!checked.ok) {
      this.send(this.codec.refused(checked));
      return;
    }
    this.take(checked.frame);
  }
}

/** A message's bytes as one Buffer (ws gives a Buffer unless told otherwise, or its fragments). */
function bufferOf(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
