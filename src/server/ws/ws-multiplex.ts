import type { AgentChoice } from "../../agents/acp-choices.js";
import type { AppendMark, SessionLog } from "../../log/session-log.js";
import type { LogEntry } from "../../log/types.js";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocket, WebSocketServer } from "ws";
import type { LeaseChange } from "../../core/control-lease.js";
import { LIMITS, PROTOCOL_VERSION, SwitchboardError, promptInput } from "../../protocol/index.js";
import type { ClientFrame, ServerFrame } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import { shuttingDown } from "../../sessions/session-manager.js";
import { actorOf, reclaimKeyOf, signInOf } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore } from "../context.js";
import { toSwitchboardError } from "../http/http.js";
import { control, steer, steerInput, steerable } from "../steering.js";
import { LastFrame } from "./outbound-frames.js";
import type { Frame } from "./outbound-frames.js";
import { batchFrames, eventFrame, multiplexCodec } from "./multiplex-frames.js";
import { MultiplexSubscriptions } from "./multiplex-subscriptions.js";
import { ConnectionTracker, controlLost, endpointServer, startConnection } from "./ws-common.js";
import { WsConnection } from "./connection.js";
import { MultiplexAppends } from "./multiplex-appends.js";
import { FORWARDED_FRAME_ACTIONS } from "../cluster/ws-forwarding.js";
import type { WsForwarding } from "../cluster/ws-forwarding.js";
import type { ForwardedFrameAction } from "../cluster/ws-forwarding.js";
import type { ForwardedLease } from "../cluster/session-forwarding.js";

/**
 * `/v1/ws`: one connection, many sessions. Each subscription is a Viewer (src/server/ws/viewer.ts)
 * of the session's log; the connection's {@link Outbox} bounds what is queued toward the client.
 */
export class MultiplexEndpoint {
  private readonly wss: WebSocketServer;
  private readonly tracker: ConnectionTracker;
  /** Shared by this endpoint's connections: see {@link LastFrame}. */
  private readonly lastFrame = new LastFrame<Frame>();

  constructor(private readonly core: GatewayCore) {
    this.wss = endpointServer(core);
    this.tracker = new ConnectionTracker(core, "multiplex");
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, identity: Identity): void {
    this.tracker.checkLimit(identity);
    this.wss.handleUpgrade(req, socket, head, (ws) =>
      startConnection(this.core, "multiplex", ws, () => {
        const signIn = signInOf(req);
        const conn = new MultiplexConnection(this.core, ws, identity, signIn, this.lastFrame);
        this.tracker.add(
          { identity, signIn },
          ws,
          (closedByClient) => conn.dispose(closedByClient),
          (why) => conn.revoke(why),
        );
      }),
    );
  }

  /** `restarting`: see ConnectionTracker.closeAll. */
  close(restarting = false): void {
    this.tracker.closeAll(restarting);
    this.wss.close();
  }
}

class MultiplexConnection extends WsConnection<ClientFrame, ServerFrame> {
  private readonly subscriptions: MultiplexSubscriptions;
  private readonly controlled = new Map<string, () => void>();
  private readonly appends: MultiplexAppends;
  /** Sessions being looked up in Redis (cluster mode), each with the frames waiting behind it. */
  private readonly discovering = new Map<string, Promise<void>>();

  constructor(
    core: GatewayCore,
    ws: WebSocket,
    identity: Identity,
    /** The browser sign-in it came with (signInOf), which binds a `clientKey`. */
    private readonly signIn: string | undefined,
    private readonly lastFrame: LastFrame<Frame>,
  ) {
    super({ core, ws, identity, codec: multiplexCodec });
    this.appends = new MultiplexAppends({
      core,
      identity,
      connId: this.connId,
      holdReads: () => this.outbox.holdReads(),
      ack: (ref, result) => this.send({ op: "ack", ref, result }),
      refuse: (frame, error) => this.refuse(frame, error),
      disposed: () => this.disposed,
    });
    this.subscriptions = new MultiplexSubscriptions({
      core,
      identity,
      outbox: this.outbox,
      pacing: this.pacing,
      send: (frame) => this.send(frame),
      refuse: (frame, error) => this.refuse(frame, error),
    });
    this.send({
      op: "hello",
      protocol: PROTOCOL_VERSION,
      connId: this.connId,
      serverTime: core.clock.now(),
      limits: {
        frameBytes: core.limits.frameBytes,
        inputBytes: LIMITS.INPUT_BYTES,
        queueBytes: core.limits.queueBytes,
        subscriptions: core.limits.subscriptionsPerConnection,
      },
    });
  }

  /**
   * Its subscriptions, lease watches and appends; its leases wait `control.reconnectGraceMs` for a
   * reconnect with their clientKey, unless `endLeases`: the client closed it normally (1000) or was revoked.
   */
  protected release(endLeases: boolean): void {
    this.subscriptions.dispose();
    for (const [id, stop] of this.controlled) {
      stop();
      this.core.sessions.get(id)?.lease.disconnect(this.connId, endLeases);
    }
    this.controlled.clear();
    this.appends.dispose();
  }

  protected pump(): void {
    this.subscriptions.pumpAll();
  }

  protected format(session: string, entries: readonly LogEntry[]): Frame | Frame[] {
    return entries.length === 1
      ? this.lastFrame.get(entries[0]!, (e) => eventFrame(session, e))
      : batchFrames(session, entries);
  }

  protected take(frame: ClientFrame): void {
    // Cluster mode: a session this node has not listed yet is looked up in Redis first; the
    // frames naming it wait behind that, in order (see ClusterMirror.discover).
    const named = "session" in frame ? frame.session : undefined;
    const discover = this.core.discover;
    if (named !== undefined && discover !== undefined) {
      const before = this.discovering.get(named);
      if (before !== undefined || this.core.sessions.get(named) === undefined) {
        const after = (before ?? discover(named))
          .catch((error: unknown) =>
            this.core.logger.warn({ err: error, sessionId: named }, "looking a session up failed"),
          )
          .then(() => {
            if (this.discovering.get(named) === after) this.discovering.delete(named);
            if (!this.disposed) this.handleListed(frame);
          });
        this.discovering.set(named, after);
        return;
      }
    }
    this.handleListed(frame);
  }

  /** Handles a frame that passed its checks (its session listed here, if it names one). */
  private handleListed(frame: ClientFrame): void {
    // A stopping gateway changes nothing more (SHUTTING_DOWN: retry against the next one); reads go on.
    const reading =
      frame.op === "subscribe" || frame.op === "unsubscribe" || frame.op === "taken" || frame.op === "ping";
    if (this.core.sessions.isStopping && !reading) return this.refuse(frame, shuttingDown());
    if (frame.op === "append") return this.appends.append(frame);
    if (isSteering(frame)) {
      const owner = this.forwarding.owner(frame.session);
      if (owner !== undefined) return this.forward(owner, frame);
    }
    if (frame.op === "mode" || frame.op === "config") return void this.choose(frame);
    try {
      const appended = new Map<SessionLog, AppendMark>();
      const result = this.core.events.tracking(appended, () => this.handle(frame));
      if (frame.ref !== undefined && frame.op !== "subscribe" && frame.op !== "ping") {
        const ack =
          result === undefined
            ? { op: "ack" as const, ref: frame.ref }
            : { op: "ack" as const, ref: frame.ref, result };
        // Acknowledged once what the frame appended is published (read-your-writes, as over HTTP),
        // or at once while the disk refuses writes: the frame was applied, its events wait.
        const published = this.core.events.publishedOrFailing(appended);
        if (published)
          void published.then(
            () => !this.disposed && this.send(ack),
            // Dropped unwritten (fenced): the frame did not take effect, and its answer says so.
            (error: unknown) => !this.disposed && this.refuse(frame, error),
          );
        else this.send(ack);
      }
    } catch (error) {
      this.refuse(frame, error);
    }
  }

  /**
   * A `mode` or `config` frame: answered once the agent confirmed (or refused) the choice, with the
   * new `agentState` once what it logged is published; other frames go on meanwhile.
   */
  private async choose(frame: Extract<ClientFrame, { op: "mode" | "config" }>): Promise<void> {
    const choice: AgentChoice =
      frame.op === "mode"
        ? { kind: "mode", modeId: frame.modeId }
        : { kind: "config", configId: frame.configId, value: frame.value };
    try {
      const session = steerable(this.core.sessions, this.identity, this.connId, frame.session, "choose");
      const agentState = await session.choose(
        choice,
        () => steerable(this.core.sessions, this.identity, this.connId, frame.session, "choose"),
        actorOf(this.identity, this.connId),
      );
      if (!this.disposed && frame.ref !== undefined) {
        this.send({ op: "ack", ref: frame.ref, result: { agentState: agentState ?? null } });
      }
    } catch (error) {
      if (!this.disposed) this.refuse(frame, error);
    }
  }

  private refuse(frame: ClientFrame, error: unknown): void {
    const e = toSwitchboardError(error);
    if (e.code === "INTERNAL") this.core.logger.error({ err: error, op: frame.op }, "ws frame failed");
    this.send({
      ...e.toJSON(),
      op: "error",
      ...(frame.ref !== undefined ? { ref: frame.ref } : {}),
      ...("session" in frame ? { session: frame.session } : {}),
    });
  }

  /**
   * A steering frame for a session another node runs: carried there (see {@link WsForwarding}) and
   * answered as on one node, `ack` once what it appended is published here, or the owner's error.
   */
  private forward(owner: string, frame: SteeringFrame): void {
    // The owner takes the lease as this connection's, as a local acquire would: how it is
    // connected, and the key its reconnect (on any node) takes it back with.
    const { op, session, ref, ...body } = frame;
    let lease: ForwardedLease | undefined;
    if (frame.op === "control") {
      const clientKey = frame.clientKey;
      delete (body as { clientKey?: string }).clientKey;
      lease = {
        via: this.signIn !== undefined ? "page" : "sdk",
        ...(clientKey !== undefined ? { reclaimKey: reclaimKeyOf(this.identity, this.signIn, clientKey) } : {}),
      };
    }
    // Watched from before the owner takes it: a change the copy gets before the answer is not missed.
    const watching = frame.op === "control" && frame.action === "acquire" && this.watchControlCopy(session);
    let answer: ReturnType<WsForwarding["run"]>;
    try {
      answer = this.forwarding.run(owner, op, session, body, lease);
    } catch (error) {
      if (watching) this.unwatchControl(session);
      this.refuse(frame, error);
      return;
    }
    answer.then(
      ({ body: result }) => {
        if (frame.op === "control" && frame.action === "release") this.unwatchControl(session);
        if (this.disposed || ref === undefined) return;
        const acked = frameResult(op, result);
        this.send(acked === undefined ? { op: "ack", ref } : { op: "ack", ref, result: acked });
      },
      (error: unknown) => {
        if (watching) this.unwatchControl(session);
        if (!this.disposed) this.refuse(frame, error);
      },
    );
  }

  private handle(frame: ClientFrame): unknown {
    const by = actorOf(this.identity, this.connId);
    switch (frame.op) {
      case "subscribe":
        this.subscriptions.subscribeFrame(frame);
        return undefined;
      case "taken":
        this.subscriptions.taken(frame.session, frame.offset);
        return undefined;
      case "unsubscribe": {
        if (!this.subscriptions.drop(frame.session))
          throw new SwitchboardError("NOT_SUBSCRIBED", `not subscribed to ${frame.session}`);
        this.renewLease(frame.session);
        return undefined;
      }
      case "input": {
        // Refused after it was taken (it waited for the session's holder, which went away): a frame
        // with a `ref` hears it as its answer (see take), one without as /ws/session's input does.
        const refusedLater = (error: unknown): void => {
          if (frame.ref === undefined && !this.disposed) this.refuse(frame, error);
        };
        steerInput(
          this.core.sessions,
          this.identity,
          this.connId,
          frame.session,
          frame,
          this.inputBudget,
          by,
          refusedLater,
        );
        return undefined;
      }
      case "signal":
        steer(
          this.core.sessions,
          this.identity,
          this.connId,
          frame.session,
          { op: "signal", signal: frame.signal },
          by,
        );
        return undefined;
      case "resize":
        steer(
          this.core.sessions,
          this.identity,
          this.connId,
          frame.session,
          { op: "resize", cols: frame.cols, rows: frame.rows },
          by,
        );
        return undefined;
      case "control": {
        const session = control(
          this.core.sessions,
          this.identity,
          this.connId,
          frame.session,
          frame.action,
          frame.force ?? false,
          { ...by, via: this.signIn !== undefined ? "page" : "sdk" },
          frame.clientKey !== undefined ? reclaimKeyOf(this.identity, this.signIn, frame.clientKey) : undefined,
        );
        if (frame.action === "acquire") this.watchControl(session);
        else this.unwatchControl(session.id);
        return { controller: session.lease.holder?.actor.name ?? null };
      }
      case "prompt": {
        const input = promptInput(frame);
        const session = steerable(this.core.sessions, this.identity, this.connId, frame.session, "prompt");
        return session.prompt(input, by);
      }
      case "abort": {
        const session = steerable(this.core.sessions, this.identity, this.connId, frame.session, "abort");
        return session.abort(frame.all ?? false, by);
      }
      case "permission": {
        const session = steerable(this.core.sessions, this.identity, this.connId, frame.session, "permission");
        session.answerPermission(frame.requestId, frame.optionId, by);
        return undefined;
      }
      case "mode":
      case "config":
        // Answered once the agent did (see choose).
        return undefined;
      case "elicitation": {
        const session = steerable(this.core.sessions, this.identity, this.connId, frame.session, "elicitation");
        session.answerElicitation(frame.requestId, { action: frame.action, content: frame.content }, by);
        return undefined;
      }
      case "ping":
        for (const id of this.controlled.keys()) this.renewLease(id);
        // The pong is the ping's answer, so it echoes `ref` as every other answer does (a ping gets no ack).
        this.send({
          op: "pong",
          ...(frame.t !== undefined ? { t: frame.t } : {}),
          ...(frame.ref !== undefined ? { ref: frame.ref } : {}),
          serverTime: this.core.clock.now(),
        });
        return undefined;
    }
  }

  /**
   * Watches this node's copy of a session whose control this connection asks its owner for: the
   * copy tells it when the owner's lease leaves it (from the `control` events it copies), as a
   * local session does. Returns whether it started watching (it did not already).
   */
  private watchControlCopy(sessionId: string): boolean {
    const copy = this.core.sessions.get(sessionId);
    if (copy === undefined || this.controlled.has(sessionId)) return false;
    this.watchControl(copy);
    return true;
  }

  private watchControl(session: Session): void {
    if (this.controlled.has(session.id)) return;
    const stopLease = session.onLeaseChange((change: LeaseChange) => {
      if (change.previous?.key !== this.connId || change.holder?.key === this.connId) return;
      this.unwatchControl(session.id);
      this.forwarding.lost(session.id);
      if (change.action === "taken-over" || change.action === "expired")
        this.send({ op: "error", session: session.id, ...controlLost(change) });
    });
    // Watched whether or not this connection subscribes to the session: a removed session's
    // watch would otherwise hold the session and its log until the connection closed.
    const stopRemoved = session.onRemoved(() => this.unwatchControl(session.id));
    this.controlled.set(session.id, () => {
      stopLease();
      stopRemoved();
    });
  }

  private unwatchControl(sessionId: string): void {
    this.controlled.get(sessionId)?.();
    this.controlled.delete(sessionId);
  }
}

type SteeringFrame = Extract<ClientFrame, { op: ForwardedFrameAction }>;

function isSteering(frame: ClientFrame): frame is SteeringFrame {
  return FORWARDED_FRAME_ACTIONS.has(frame.op);
}

/** A forwarded frame's `ack.result` from the owner's HTTP answer: what {@link MultiplexConnection} acks on one node. */
function frameResult(op: ForwardedFrameAction, body: unknown): unknown {
  switch (op) {
    case "control":
      return { controller: (body as { controller: string | null }).controller };
    case "prompt":
    case "abort":
      return body;
    case "mode":
    case "config":
      return { agentState: (body as { agentState: unknown }).agentState };
    case "input":
    case "signal":
    case "resize":
    case "permission":
    case "elicitation":
      return undefined;
  }
}
