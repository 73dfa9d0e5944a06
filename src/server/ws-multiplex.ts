import type { SessionLog } from "../log/session-log.js";
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { RawData, WebSocket, WebSocketServer } from "ws";
import type { LeaseChange } from "../core/control-lease.js";
import type { FramePiece } from "../log/json-text.js";
import { OutputEntry } from "../log/output-entry.js";
import type { LogEntry } from "../log/types.js";
import {
  CLOSE_CODES,
  ClientFrame,
  LAG_SCREEN_QUEUE_BYTES,
  LIMITS,
  PROTOCOL_VERSION,
  SwitchboardError,
  isRef,
} from "../protocol/index.js";
import type { Ref, ServerFrame, SessionEvent } from "../protocol/index.js";
import { RemoteSession } from "../sessions/remote-session.js";
import type { Session } from "../sessions/session.js";
import { sessionFor } from "./access.js";
import { actorOf, reclaimKeyOf, signInOf } from "./auth.js";
import type { Identity } from "./auth.js";
import type { Revocation } from "./connection-counter.js";
import type { GatewayCore } from "./context.js";
import { SessionFeed } from "./feed.js";
import type { FeedPacing, FeedSink } from "./feed.js";
import { toSwitchboardError } from "./http.js";
import { LagJump } from "./lag-jump.js";
import { outputAfter, outputEnd, viewerScreen } from "./screen-frame.js";
import { TokenBucket } from "./rate-limit.js";
import { control, steer, steerInput, steerable } from "./steering.js";
import { LastFrame, OWN_FRAME_BYTES, jsonFramePooled, textFrame } from "./outbound-frames.js";
import type { Frame } from "./outbound-frames.js";
import {
  ClientFrameCheck,
  ConnectionTracker,
  FRAME_FAILED,
  Outbox,
  controlLost,
  endpointServer,
  handleFrames,
  startConnection,
} from "./ws-common.js";
import { FORWARDED_FRAME_ACTIONS, WsForwarding } from "./ws-forwarding.js";
import type { ForwardedFrameAction } from "./ws-forwarding.js";

/** Checks every client frame of this endpoint (shared: it holds nothing per connection). */
const frameCheck = new ClientFrameCheck(ClientFrame, "op");

/**
 * `/v1/ws`: one connection, many sessions. Each subscription is a {@link SessionFeed} over the
 * session's log; the connection's {@link Outbox} bounds what is queued toward the client.
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
          () => conn.dispose(),
          (why) => conn.revoke(why),
        );
      }),
    );
  }

  close(): void {
    this.tracker.closeAll();
    this.wss.close();
  }
}

interface Subscription {
  feed: SessionFeed;
  session: Session;
  /** `lag: "screen"`: its jumps to the screen (src/server/lag-jump.ts). */
  lag?: LagJump | undefined;
  /** Stops watching the session's removal. */
  unwatch: () => void;
  /** Stops counting this connection's token as watching. */
  unview: () => void;
}

type LagSize = { cols: number | undefined; rows: number | undefined };

type SubscribeFrame = Extract<ClientFrame, { op: "subscribe" }>;

/** The size a `lag: "screen"` subscription's screens are drawn at, or undefined without `lag` (or a PTY). */
function lagOf(frame: SubscribeFrame, session: Session): LagSize | undefined {
  return frame.lag === "screen" && session.record.pty ? { cols: frame.cols, rows: frame.rows } : undefined;
}

class MultiplexConnection {
  private readonly connId = randomBytes(16).toString("base64url");
  private readonly subs = new Map<string, Subscription>();
  /**
   * Subscribes waiting for this node's copy of a remote session to reach their `since` (see
   * RemoteSession.reach), by session: the newest frame's token, so a later subscribe or an
   * unsubscribe meanwhile wins.
   */
  private readonly waiting = new Map<string, object>();
  /** Subscribes with `screen` waiting for their screen, by session; a later subscribe or unsubscribe cancels one. */
  private readonly screenWaits = new Map<string, symbol>();
  private readonly controlled = new Map<string, () => void>();
  private readonly outbox: Outbox;
  private readonly inputBucket: TokenBucket;
  /** Steering frames for sessions another node runs (cluster mode). */
  private readonly forwarding: WsForwarding;
  /** This connection's part in pacing catch-ups (its token's share, released when it closes). */
  private readonly pacing: FeedPacing;
  private readonly releaseShare: () => void;
  private disposed = false;

  constructor(
    private readonly core: GatewayCore,
    private readonly ws: WebSocket,
    private readonly identity: Identity,
    /** The browser sign-in it came with (signInOf), which binds a `clientKey`. */
    private readonly signIn: string | undefined,
    lastFrame: LastFrame<Frame>,
  ) {
    const { share, release } = core.catchUp.hold(identity.name);
    this.pacing = { scheduler: core.catchUp.scheduler, share };
    this.releaseShare = release;
    this.outbox = new Outbox(
      ws,
      core.limits.queueBytes,
      () => this.pumpAll(),
      (session, entries) =>
        entries.length === 1
          ? lastFrame.get(entries[0]!, (e) => eventFrame(session, e))
          : batchFrames(session, entries),
      () => core.metrics.wsReadsPaused.inc({ endpoint: "multiplex" }),
      share,
    );
    this.inputBucket = new TokenBucket(core.limits.inputBytesPerSecond, core.clock);
    this.forwarding = new WsForwarding(core, identity, this.connId, this.inputBucket);
    handleFrames({
      ws,
      core,
      endpoint: "multiplex",
      connId: this.connId,
      handle: (data, isBinary) => this.onMessage(data, isBinary),
      tell: () => this.send({ op: "error", ...FRAME_FAILED }),
      dispose: () => this.dispose(),
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

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const id of [...this.subs.keys()]) this.drop(id);
    this.waiting.clear();
    for (const [id, stop] of this.controlled) {
      stop();
      this.core.sessions.get(id)?.lease.disconnect(this.connId);
    }
    this.controlled.clear();
    this.forwarding.dispose();
    this.outbox.dispose();
    this.releaseShare();
  }

  /** Its token or sign-in was revoked: say so and close (see `REVOKED` in ws-common.ts). */
  revoke(why: Revocation): void {
    this.send({ op: "error", ...why });
    // No grace: the revoked sign-in cannot come back for its leases.
    for (const id of this.controlled.keys()) this.core.sessions.get(id)?.lease.release(this.connId, "disconnected");
    this.dispose();
    this.ws.close(CLOSE_CODES.POLICY, "credentials revoked");
  }

  private send(frame: ServerFrame): void {
    this.outbox.sendControl(JSON.stringify(frame));
  }

  private pumpAll(): void {
    for (const sub of this.subs.values()) {
      // A `lag: "screen"` subscription that fell behind is held while its screen is made.
      if (sub.lag?.holding === true || sub.lag?.check() === true) continue;
      sub.feed.pump();
    }
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.disposed) return;
    const checked = frameCheck.check(data, isBinary);
    if (!checked.ok) {
      const ref = refOf(checked.raw);
      const session = sessionOf(checked.raw);
      this.send({
        op: "error",
        ...(ref !== undefined ? { ref } : {}),
        ...(session !== undefined ? { session } : {}),
        code: checked.code,
        message: checked.message,
      });
      return;
    }
    const frame = checked.frame;
    if (isSteering(frame)) {
      const owner = this.forwarding.owner(frame.session);
      if (owner !== undefined) return this.forward(owner, frame);
    }
    try {
      const appended = new Map<SessionLog, number>();
      const result = this.core.events.tracking(appended, () => this.handle(frame));
      if (frame.ref !== undefined && frame.op !== "subscribe" && frame.op !== "ping") {
        const ack =
          result === undefined
            ? { op: "ack" as const, ref: frame.ref }
            : { op: "ack" as const, ref: frame.ref, result };
        // Acknowledged once what the frame appended is published (read-your-writes, as over HTTP),
        // or at once while the disk refuses writes: the frame was applied, its events wait.
        const published = this.core.events.publishedOrFailing(appended);
        if (published) void published.then(() => !this.disposed && this.send(ack));
        else this.send(ack);
      }
    } catch (error) {
      this.refuse(frame, error);
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
    // The owner's control takes no clientKey: a lease held on another node ends with the
    // connection, without a grace period.
    const { op, session, ref, ...body } = frame;
    if ("clientKey" in body) delete body.clientKey;
    // Watched from before the owner takes it: a change the copy gets before the answer is not missed.
    const watching = frame.op === "control" && frame.action === "acquire" && this.watchControlCopy(session);
    let answer: ReturnType<WsForwarding["run"]>;
    try {
      answer = this.forwarding.run(owner, op, session, body);
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
        this.screenWaits.delete(frame.session);
        if (frame.screen === true) {
          this.waiting.delete(frame.session);
          this.subscribeScreen(frame);
        } else this.subscribeWhenCopied(frame);
        return undefined;
      case "unsubscribe": {
        if (!this.drop(frame.session))
          throw new SwitchboardError("NOT_SUBSCRIBED", `not subscribed to ${frame.session}`);
        this.renewControl(frame.session);
        return undefined;
      }
      case "input": {
        steerInput(this.core.sessions, this.identity, this.connId, frame.session, frame, this.inputBucket, by);
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
        const session = steerable(this.core.sessions, this.identity, this.connId, frame.session, "prompt");
        return session.prompt(frame.text, by);
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
      case "ping":
        for (const id of this.controlled.keys()) this.renewControl(id);
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
   * A `since` past this node's copy of a remote session waits for the copy (bounded, as GET and
   * SSE do) instead of being refused: a viewer resuming here saw that position on another node.
   * Other frames go on meanwhile; the old subscription, if any, stays until the answer.
   */
  private subscribeWhenCopied(frame: Extract<ClientFrame, { op: "subscribe" }>): void {
    const since = frame.since ?? 0;
    const session = sessionFor(this.core.sessions, this.identity, frame.session, "see");
    this.waiting.delete(frame.session);
    if (!(session instanceof RemoteSession) || since <= session.log.head) {
      this.subscribe(frame.session, since, frame.types, frame.ref, lagOf(frame, session));
      return;
    }
    if (!this.subs.has(frame.session) && this.subscriptionCount() >= this.core.limits.subscriptionsPerConnection)
      throw this.tooManySubscriptions();
    const token = {};
    this.waiting.set(frame.session, token);
    void session.reach(since).then(() => {
      if (this.disposed || this.waiting.get(frame.session) !== token) return;
      this.waiting.delete(frame.session);
      try {
        this.subscribe(frame.session, since, frame.types, frame.ref, lagOf(frame, session));
      } catch (error) {
        this.refuse(frame, error);
      }
    });
  }

  /** Sessions subscribed to or waiting to be. */
  private subscriptionCount(): number {
    let count = this.subs.size;
    for (const id of this.waiting.keys()) if (!this.subs.has(id)) count++;
    return count;
  }

  private tooManySubscriptions(): SwitchboardError {
    return new SwitchboardError(
      "LIMIT_EXCEEDED",
      `at most ${this.core.limits.subscriptionsPerConnection} subscriptions per connection (limits.subscriptionsPerConnection)`,
    );
  }

  private subscribe(
    sessionId: string,
    since: number,
    types: string[] | undefined,
    ref: Ref | undefined,
    lagSize?: LagSize,
  ): void {
    const session = sessionFor(this.core.sessions, this.identity, sessionId, "see");
    // A refused subscribe changes nothing: a position past the head is refused before an old
    // subscription is dropped (one retention dropped is served from the oldest kept, below).
    if (since > session.log.head) session.log.checkPosition(since);
    // Re-subscribing moves the position: drop the old feed first so nothing is sent twice.
    const resubscribing = this.drop(sessionId);
    if (!resubscribing && this.subscriptionCount() >= this.core.limits.subscriptionsPerConnection)
      throw this.tooManySubscriptions();
    const sink: FeedSink = {
      get queuedBytes() {
        return outbox.queuedBytes;
      },
      budgetBytes:
        lagSize === undefined
          ? this.core.limits.queueBytes
          : Math.min(this.core.limits.queueBytes, LAG_SCREEN_QUEUE_BYTES),
      get open() {
        return outbox.open;
      },
      deliver: (entries, live) => {
        if (lag !== undefined) lag.sentUpTo = outputEnd(entries, lag.sentUpTo);
        this.outbox.deliver(session.id, entries as LogEntry[], live);
      },
      reset: (first, head) => {
        this.core.metrics.resets.inc();
        this.send({ op: "reset", session: session.id, reason: "trimmed", head, first });
      },
    };
    const outbox = this.outbox;
    // A filter never hides the session's end (`exit`/`lost`): without it a client that left
    // them out would wait forever on an ended session (SSE ends its stream instead).
    const typeSet = types && types.length > 0 ? new Set([...types, ...END_TYPES]) : undefined;
    const hooks = { onCatchUp: () => this.core.metrics.catchUps.inc() };
    let feed: SessionFeed;
    let trimmed = false;
    try {
      feed = new SessionFeed(session.log, since, sink, typeSet, hooks, this.pacing);
    } catch (error) {
      if (!(error instanceof SwitchboardError) || error.code !== "HISTORY_TRIMMED") throw error;
      trimmed = true;
      feed = new SessionFeed(session.log, session.log.first - 1, sink, typeSet, hooks, this.pacing);
    }
    const unwatch = session.onRemoved(() => {
      this.drop(session.id);
      this.send({
        op: "reset",
        session: session.id,
        reason: "deleted",
        head: session.log.head,
        first: session.log.first,
      });
    });
    const sub: Subscription = { feed, session, unwatch, unview: session.watch(this.identity.name) };
    /** A feed from `seq` on: after a screen, or again from where a held one stopped. */
    const restart = (seq: number) => {
      // Retention dropped what it would read: say so (as the feed does) and go on from the oldest kept.
      const from = Math.max(seq, session.log.first - 1);
      if (from > seq) sink.reset(session.log.first, session.log.head, seq);
      sub.feed = new SessionFeed(session.log, from, sink, typeSet, hooks, this.pacing);
      sub.feed.pump();
    };
    const lag =
      lagSize === undefined
        ? undefined
        : new LagJump(
            this.core,
            session,
            lagSize,
            {
              hold: () => sub.feed.close(),
              apply: ({ frame, seq }, skipped) => {
                const { type: _type, ...fields } = frame;
                this.send({ op: "screen", session: session.id, ...fields, skipped });
                restart(seq);
              },
              resume: () => restart(sub.feed.cursor),
            },
            outputAfter(session, feed.cursor),
          );
    if (lag !== undefined) {
      sub.lag = lag;
      const unview = sub.unview;
      const release = this.core.screens.keepCurrent(session.id);
      sub.unview = () => {
        lag.close();
        release();
        unview();
      };
    }
    this.subs.set(sessionId, sub);
    const end = endBefore(session, feed.cursor);
    this.send({
      op: "subscribed",
      session: session.id,
      from: feed.cursor + 1,
      head: session.log.head,
      ...(end !== undefined ? { end } : {}),
      ...(ref !== undefined ? { ref } : {}),
    });
    if (trimmed) sink.reset(session.log.first, session.log.head);
    feed.pump();
  }

  /**
   * Subscribe with `screen`: the screen of the session (refused as GET .../screen refuses it),
   * then a subscription from the last event it shows whole (see viewerScreen).
   */
  private subscribeScreen(frame: Extract<ClientFrame, { op: "subscribe" }>): void {
    const session = sessionFor(this.core.sessions, this.identity, frame.session, "see");
    const wait = Symbol(session.id);
    this.screenWaits.set(session.id, wait);
    const ref = frame.ref !== undefined ? { ref: frame.ref } : {};
    viewerScreen(this.core, session, { cols: frame.cols, rows: frame.rows })
      .then(({ frame: screen, seq }) => {
        if (this.disposed || this.screenWaits.get(session.id) !== wait) return;
        this.screenWaits.delete(session.id);
        const { type: _type, ...fields } = screen;
        this.send({ op: "screen", session: session.id, ...fields, ...ref });
        this.subscribe(session.id, seq, frame.types, frame.ref, lagOf(frame, session));
      })
      .catch((error: unknown) => {
        if (this.disposed) return;
        const e = toSwitchboardError(error);
        if (e.code === "INTERNAL") this.core.logger.error({ err: error, op: "subscribe" }, "ws frame failed");
        this.send({ ...e.toJSON(), op: "error", ...ref, session: session.id });
      });
  }

  /** Ends the subscription to `sessionId` (or its wait for a screen or a copy), if there is one. */
  private drop(sessionId: string): boolean {
    const screenWaited = this.screenWaits.delete(sessionId);
    const waited = this.waiting.delete(sessionId) || screenWaited;
    const sub = this.subs.get(sessionId);
    if (!sub) return waited;
    sub.feed.close();
    sub.unwatch();
    sub.unview();
    this.subs.delete(sessionId);
    return true;
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
    // watch used to stay, holding the session and its log, until the connection closed.
    const stopRemoved = session.onRemoved(() => this.unwatchControl(session.id));
    this.controlled.set(session.id, () => {
      stopLease();
      stopRemoved();
    });
  }

  /** Renews this connection's lease of `sessionId` if it holds it: here, or through the session's owner. */
  private renewControl(sessionId: string): void {
    if (this.forwarding.owner(sessionId) !== undefined) this.forwarding.renew(sessionId);
    else this.core.sessions.get(sessionId)?.lease.touch(this.connId);
  }

  private unwatchControl(sessionId: string): void {
    this.controlled.get(sessionId)?.();
    this.controlled.delete(sessionId);
  }
}

const END_TYPES: ReadonlySet<string> = new Set(["exit", "lost"]);

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
    case "input":
    case "signal":
    case "resize":
    case "permission":
      return undefined;
  }
}

/**
 * The session's last event (`exit`/`lost`) when the session has ended and a subscriber at
 * `cursor` already has it: nothing more will be delivered, and without it in `subscribed` a
 * client resuming from a saved position at the end would wait for an end that never comes.
 * (An ended session's log does not grow, so the end is at or before the head.)
 */
function endBefore(session: Session, cursor: number): SessionEvent | undefined {
  if (session.running || cursor < session.log.head) return undefined;
  const entry = lastEnd(session.log);
  return entry !== undefined && entry.seq <= cursor ? (JSON.parse(entry.json) as SessionEvent) : undefined;
}

/** How many of an ended session's last events are searched for its end first: little, if anything, follows it. */
const END_TAIL_EVENTS = 64;

/**
 * An ended session's `exit`/`lost`. Looked for among its last events first: read from the
 * start, a type-filtered read pages through the whole log (a million events for a long
 * session's late subscriber, each time it resubscribes).
 */
function lastEnd(log: SessionLog): LogEntry | undefined {
  const tailFrom = Math.max(log.first - 1, log.head - END_TAIL_EVENTS);
  const tail = log.read(tailFrom, { types: END_TYPES, limit: END_TAIL_EVENTS }).entries;
  if (tail.length > 0 || tailFrom === log.first - 1) return tail.at(-1);
  // Not expected (nothing but a run's bookkeeping follows an end), but then from the start, by pages.
  for (let since = log.first - 1; since < tailFrom;) {
    const page = log.read(since, { types: END_TYPES, limit: 1 });
    if (page.entries.length > 0) return page.entries[0];
    if (page.next <= since) break;
    since = page.next;
  }
  return undefined;
}

function refOf(raw: unknown): Ref | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const ref = (raw as { ref?: unknown }).ref;
  return isRef(ref) ? ref : undefined;
}

/**
 * The session a refused frame names, if it names one a session id could be: its error says which
 * session, as the errors of frames that passed the schema do — without it a client that sends
 * keystrokes to several sessions without `ref` could not tell whose input was refused.
 */
function sessionOf(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const session = (raw as { session?: unknown }).session;
  return typeof session === "string" && session.length > 0 && session.length <= 128 ? session : undefined;
}

/** An `event` frame, encoded once for every connection that gets it (output from its bytes: {@link OutputEntry.jsonUtf8}). */
function eventFrame(session: string, entry: LogEntry): Buffer {
  const before = `{"op":"event","session":${JSON.stringify(session)},"event":`;
  return entry instanceof OutputEntry
    ? jsonFramePooled(entry.jsonPieces(before, "}"))
    : textFrame(`${before}${entry.json}}`);
}

/**
 * Frames of a run of one session's events (a catch-up batch, or live events held while the
 * socket was busy): consecutive events share an `events` frame, except that output of
 * {@link OWN_FRAME_BYTES} or more gets an `event` frame of its own — a flood's 64 KiB pieces
 * are then each written in a reused buffer (see FrameMemory) instead of a new buffer of
 * several per lagging connection.
 */
function batchFrames(session: string, entries: readonly LogEntry[]): Frame[] {
  const frames: Frame[] = [];
  let from = 0;
  entries.forEach((e, i) => {
    if (!(e instanceof OutputEntry) || e.bytes.length < OWN_FRAME_BYTES) return;
    if (i > from) frames.push(eventsFrame(session, entries.slice(from, i)));
    frames.push(eventFrame(session, e));
    from = i + 1;
  });
  if (from < entries.length) frames.push(eventsFrame(session, from === 0 ? entries : entries.slice(from)));
  return frames;
}

/** An `events` frame of consecutive events. */
function eventsFrame(session: string, entries: readonly LogEntry[]): Frame {
  const before = `{"op":"events","session":${JSON.stringify(session)},"events":[`;
  if (!entries.some((e) => e instanceof OutputEntry)) return `${before}${entries.map((e) => e.json).join(",")}]}`;
  // Written once into one buffer, output from its bytes (see OutputEntry.jsonPieces).
  const pieces: FramePiece[] = [before];
  entries.forEach((e, i) => {
    const comma = i === 0 ? "" : ",";
    if (e instanceof OutputEntry) pieces.push(...e.jsonPieces(comma, ""));
    else pieces.push(`${comma}${e.json}`);
  });
  pieces.push("]}");
  return jsonFramePooled(pieces);
}
