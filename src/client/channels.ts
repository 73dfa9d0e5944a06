import { EVENT_TYPES, LAG_TAKEN_EVERY_BYTES, SwitchboardError } from "../protocol/index.js";
import type { Ref, ServerFrame, SessionEvent } from "../protocol/index.js";
import type { ConnectionLink, RequestTracker } from "./requests.js";
import { screenOf } from "./screen.js";
import { Subscription } from "./subscription.js";
import type { SubscribeOptions } from "./subscription.js";

const KNOWN_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);

/**
 * The client's subscriptions, by session ("channels"). The gateway sees one subscription per
 * session however many the client has: from the lowest seq any of them still needs, with the
 * union of their types. Each {@link Subscription} drops what it has seen already, so a
 * subscription joining later or a resume after a reconnect never delivers a duplicate.
 */
export class Channels {
  private readonly channels = new Map<string, Set<Subscription>>();
  /** Subscribe requests waiting for their answer, by ref: an `error` fails that session's subscriptions. */
  private readonly subscribeRefs = new Map<Ref, string>();
  /**
   * Sessions subscribed with `lag: "screen"`, and the output byte last told in a `taken` frame
   * (-1: none yet). The gateway counts what it sent past it as queued: without it, output waiting
   * in socket buffers keeps a human viewer seconds behind (docs/protocol.md, `taken`).
   */
  private readonly lagTold = new Map<string, number>();

  constructor(
    private readonly link: ConnectionLink,
    private readonly refs: Pick<RequestTracker, "ref" | "ignoredRef">,
  ) {}

  /** Whether any subscription still follows its session (and so needs the connection). */
  get live(): boolean {
    for (const subs of this.channels.values()) for (const sub of subs) if (sub.live) return true;
    return false;
  }

  /**
   * Validates the arguments and adds a subscription; the caller subscribes it at the gateway.
   * One whose signal is aborted already is returned stopped, and not added.
   */
  add(session: string, options: SubscribeOptions, onEvent: (event: SessionEvent) => void): Subscription {
    if (typeof session !== "string" || session.length === 0)
      throw new SwitchboardError("VALIDATION_FAILED", "session: an id is required");
    const since = options.since ?? 0;
    if (!Number.isSafeInteger(since) || since < 0)
      throw new SwitchboardError("VALIDATION_FAILED", "since: a non-negative integer seq");
    const unknown = options.types?.filter((t) => !KNOWN_TYPES.has(t)) ?? [];
    if (unknown.length > 0)
      throw new SwitchboardError("VALIDATION_FAILED", `types: unknown event type ${unknown.join(", ")}`);

    const sub = new Subscription(session, options, onEvent, (s) => this.remove(s));
    // Its signal was aborted already: it stopped at once, and the gateway hears nothing.
    if (!sub.live) return sub;
    let channel = this.channels.get(session);
    if (!channel) {
      channel = new Set();
      this.channels.set(session, channel);
    }
    channel.add(sub);
    return sub;
  }

  /** Subscribes every followed session again (after the connection opened). */
  subscribeAll(): void {
    for (const session of [...this.channels.keys()]) this.subscribe(session);
  }

  /** Subscribes the session at the gateway, from where its subscriptions need it. */
  subscribe(session: string): void {
    const subs = [...(this.channels.get(session) ?? [])].filter((s) => s.live);
    if (subs.length === 0) return;
    const since = Math.min(...subs.map((s) => s.lastSeq));
    let types: Set<string> | undefined = new Set();
    for (const s of subs) {
      const t = s.serverTypes;
      if (!t) {
        types = undefined;
        break;
      }
      for (const x of t) types.add(x);
    }
    const ref = this.refs.ref();
    this.subscribeRefs.set(ref, session);
    // The new position is at or before every subscription's last seq: each waits for it.
    for (const sub of subs) sub.awaitConfirmation(ref);
    // A screen for a subscription alone on its session (another would need the events it skips).
    const screen = subs.length === 1 ? subs[0]!.wantsScreen : undefined;
    const position = screen === undefined ? { since } : { screen: true, ...(screen === true ? {} : screen) };
    const lag = subs.length === 1 ? subs[0]!.wantsLag : undefined;
    if (lag !== undefined) this.lagTold.set(session, -1);
    else this.lagTold.delete(session);
    this.link.send(
      JSON.stringify({
        op: "subscribe",
        session,
        ...position,
        ...(lag !== undefined ? { lag } : {}),
        ...(types ? { types: [...types] } : {}),
        ref,
      }),
    );
  }

  /** The gateway's `screen`, before its `subscribed`. */
  screen(frame: Extract<ServerFrame, { op: "screen" }>): void {
    for (const sub of this.channels.get(frame.session) ?? []) sub.screen(frame.ref, screenOf(frame));
    if (this.lagTold.has(frame.session)) this.tellTaken(frame.session, frame.offset);
  }

  /** The gateway's `subscribed`. */
  confirmed(frame: Extract<ServerFrame, { op: "subscribed" }>): void {
    if (frame.ref !== undefined) this.subscribeRefs.delete(frame.ref);
    const channel = this.channels.get(frame.session);
    if (!channel) return;
    let ended = false;
    for (const sub of channel)
      if (
        sub.confirm(
          frame.ref,
          {
            from: frame.from,
            head: frame.head,
            ...(frame.agentState !== undefined ? { agentState: frame.agentState } : {}),
          },
          frame.end,
        )
      )
        ended = true;
    if (ended) this.prune(frame.session, channel);
  }

  /** Events of a session, in seq order. */
  deliver(session: string, events: readonly SessionEvent[]): void {
    const channel = this.channels.get(session);
    if (!channel) return;
    let ended = false;
    for (const event of events) {
      for (const sub of channel) if (sub.deliver(event)) ended = true;
    }
    const told = this.lagTold.get(session);
    if (told !== undefined) {
      // Where the last output event starts: exact, and behind its end by one event at most.
      let at = -1;
      for (let i = events.length - 1; i >= 0 && at < 0; i--) {
        const event = events[i]!;
        if (event.type === "output" && event.stream !== "stderr") at = event.offset;
      }
      if (at >= 0 && (told < 0 || at - told >= LAG_TAKEN_EVERY_BYTES)) this.tellTaken(session, at);
    }
    // Subscriptions that stop otherwise (unsubscribe, failure) prune their channel themselves.
    if (ended) this.prune(session, channel);
  }

  /** The gateway's `reset`: retention dropped events, or the session was deleted. */
  reset(frame: Extract<ServerFrame, { op: "reset" }>): void {
    const channel = this.channels.get(frame.session);
    if (!channel) return;
    for (const sub of [...channel]) {
      if (frame.reason === "deleted")
        sub.fail(new SwitchboardError("SESSION_NOT_FOUND", `session ${frame.session} was deleted`));
      else sub.reset(frame.reason, frame.first, frame.head);
    }
    this.prune(frame.session, channel);
  }

  /** An `error` answered `ref`; false when `ref` was no subscribe request. */
  refused(ref: Ref, error: Error): boolean {
    const session = this.subscribeRefs.get(ref);
    if (session === undefined) return false;
    this.subscribeRefs.delete(ref);
    const channel = this.channels.get(session);
    if (!channel) return true;
    for (const sub of [...channel]) sub.fail(error);
    this.prune(session, channel);
    return true;
  }

  /** The connection dropped: its subscribe requests will not be answered. */
  disconnected(): void {
    this.subscribeRefs.clear();
  }

  /** The client closed: every subscription fails with `error`, or without one just stops. */
  close(error: Error | undefined): void {
    const subs = [...this.channels.values()].flatMap((channel) => [...channel]);
    this.channels.clear();
    for (const sub of subs) {
      if (error) sub.fail(error);
      else sub.clientClosed();
    }
  }

  private remove(sub: Subscription): void {
    const channel = this.channels.get(sub.session);
    if (!channel) return;
    channel.delete(sub);
    this.prune(sub.session, channel);
  }

  private tellTaken(session: string, offset: number): void {
    this.lagTold.set(session, offset);
    if (this.link.isOpen()) this.link.send(JSON.stringify({ op: "taken", session, offset }));
  }

  /** Forgets subscriptions that ended; tells the gateway when nobody follows the session any more. */
  private prune(session: string, channel: Set<Subscription>): void {
    for (const s of channel) if (!s.live) channel.delete(s);
    if (channel.size > 0) return;
    this.channels.delete(session);
    this.lagTold.delete(session);
    if (this.link.isOpen()) this.link.send(JSON.stringify({ op: "unsubscribe", session, ref: this.refs.ignoredRef() }));
  }
}
