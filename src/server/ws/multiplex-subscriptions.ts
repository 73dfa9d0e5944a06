/** The subscriptions of one `/v1/ws` connection: each a feed over a session's log, with waits for a screen or a remote copy. */
import type { SessionLog } from "../../log/session-log.js";
import type { LogEntry } from "../../log/types.js";
import { SwitchboardError } from "../../protocol/index.js";
import type { ClientFrame, Ref, ServerFrame, SessionEvent } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import { sessionFor } from "../identity/access.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore } from "../context.js";
import { resolveSession } from "../cluster/session-resolver.js";
import type { FeedPacing } from "./feed.js";
import { toSwitchboardError } from "../http/http.js";
import { outputEnd, viewerScreen } from "./screen-frame.js";
import { OutputInFlight } from "./output-in-flight.js";
import { Viewer } from "./viewer.js";
import type { Outbox } from "./ws-common.js";

type LagSize = { cols: number | undefined; rows: number | undefined };

type SubscribeFrame = Extract<ClientFrame, { op: "subscribe" }>;

/** The size a `lag: "screen"` subscription's screens are drawn at, or undefined without `lag` (or a PTY). */
function lagOf(frame: SubscribeFrame, session: Session): LagSize | undefined {
  return frame.lag === "screen" && session.record.pty ? { cols: frame.cols, rows: frame.rows } : undefined;
}

const END_TYPES: ReadonlySet<string> = new Set(["exit", "lost"]);

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

/** What a {@link MultiplexSubscriptions} needs from its connection. */
export interface SubscriptionsOwner {
  core: GatewayCore;
  identity: Identity;
  outbox: Outbox;
  pacing: FeedPacing;
  send: (frame: ServerFrame) => void;
  refuse: (frame: ClientFrame, error: unknown) => void;
}

export class MultiplexSubscriptions {
  private readonly subs = new Map<string, Viewer>();
  /** Of the `lag: "screen"` subscriptions, by session. */
  private readonly inFlight = new Map<string, OutputInFlight>();
  /**
   * Subscribes waiting for this node's copy of a remote session to reach their `since` (see
   * RemoteSession.reach), by session: the newest frame's token, so a later subscribe or an
   * unsubscribe meanwhile wins.
   */
  private readonly waiting = new Map<string, object>();
  /** Subscribes with `screen` waiting for their screen, by session; a later subscribe or unsubscribe cancels one. */
  private readonly screenWaits = new Map<string, symbol>();
  private readonly core: GatewayCore;
  private readonly identity: Identity;
  private readonly outbox: Outbox;
  private readonly pacing: FeedPacing;
  private readonly send: (frame: ServerFrame) => void;
  private readonly refuse: (frame: ClientFrame, error: unknown) => void;
  private disposed = false;

  constructor(owner: SubscriptionsOwner) {
    this.core = owner.core;
    this.identity = owner.identity;
    this.outbox = owner.outbox;
    this.pacing = owner.pacing;
    this.send = owner.send;
    this.refuse = owner.refuse;
  }

  /** A `subscribe` frame: with `screen`, the screen first; else from `since` (waiting for a remote copy). */
  subscribeFrame(frame: SubscribeFrame): void {
    this.screenWaits.delete(frame.session);
    if (frame.screen === true) {
      this.waiting.delete(frame.session);
      this.subscribeScreen(frame);
    } else this.subscribeWhenCopied(frame);
  }

  /** Pumps every feed (the outbox drained), but those of `lag: "screen"` subscriptions being held. */
  pumpAll(): void {
    for (const viewer of this.subs.values()) viewer.pump();
  }

  /** A `taken` frame: ignored for a session without a `lag: "screen"` subscription here. */
  taken(sessionId: string, offset: number): void {
    const flight = this.inFlight.get(sessionId);
    if (flight === undefined) return;
    if (flight.taken(offset)) this.subs.get(sessionId)?.pump();
  }

  dispose(): void {
    this.disposed = true;
    for (const id of [...this.subs.keys()]) this.drop(id);
    this.waiting.clear();
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
    const place = resolveSession(this.core.sessions, session);
    if (!place.behind(since, session)) {
      this.subscribe(frame.session, since, frame.types, frame.ref, lagOf(frame, session));
      return;
    }
    if (!this.subs.has(frame.session) && this.subscriptionCount() >= this.core.limits.subscriptionsPerConnection)
      throw this.tooManySubscriptions();
    const token = {};
    this.waiting.set(frame.session, token);
    void place.reach(since).then(() => {
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
    const outbox = this.outbox;
    const flight = lagSize === undefined ? undefined : new OutputInFlight();
    // A filter never hides the session's end (`exit`/`lost`): without it a client that left
    // them out would wait forever on an ended session (SSE ends its stream instead).
    const typeSet = types && types.length > 0 ? new Set([...types, ...END_TYPES]) : undefined;
    const viewer = new Viewer({
      core: this.core,
      log: session.log,
      session,
      watcher: this.identity.name,
      seq: since,
      sink: {
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
        trimmed: (first, head) => this.send({ op: "reset", session: session.id, reason: "trimmed", head, first }),
        removed: () => {
          this.drop(session.id);
          const { first, head } = session.log;
          this.send({ op: "reset", session: session.id, reason: "deleted", head, first });
        },
        screen: ({ frame }, skipped) => {
          if (flight !== undefined) flight.sent = Math.max(flight.sent ?? 0, frame.offset);
          const { type: _type, ...fields } = frame;
          this.send({ op: "screen", session: session.id, ...fields, skipped });
        },
      },
      pacing: this.pacing,
      types: typeSet,
      metrics: this.core.metrics,
      lag: lagSize,
    });
    this.subs.set(sessionId, viewer);
    if (flight !== undefined) this.inFlight.set(sessionId, flight);
    const end = endBefore(session, viewer.cursor);
    this.send({
      op: "subscribed",
      session: session.id,
      from: viewer.cursor + 1,
      head: session.log.head,
      ...(end !== undefined ? { end } : {}),
      ...(ref !== undefined ? { ref } : {}),
      ...(session.record.agentState !== undefined ? { agentState: session.record.agentState } : {}),
    });
    viewer.start();
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
  drop(sessionId: string): boolean {
    const screenWaited = this.screenWaits.delete(sessionId);
    const waited = this.waiting.delete(sessionId) || screenWaited;
    const viewer = this.subs.get(sessionId);
    if (!viewer) return waited;
    viewer.close();
    this.subs.delete(sessionId);
    this.inFlight.delete(sessionId);
    return true;
  }
}
