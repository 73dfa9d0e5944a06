import { actorOf } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore } from "../context.js";
import type { InputBudget } from "../input-budget.js";
import { FORWARDED_ACTIONS, forwardToOwner, ownerElsewhere } from "./session-forwarding.js";
import type { ForwardedAnswer, ForwardedLease, SessionAction, SessionCall } from "./session-forwarding.js";
import { inputBytes } from "../steering.js";

/**
 * The WebSocket steering frames a node carries to a session's owner: every forwarded route but
 * append, delete, resume and a `/v1/messages` delivery (`renew` and `disconnect` are no frames: a
 * `ping` and the close send them).
 */
type NotAFrame =
  | "events"
  | "delete"
  | "resume"
  | "message"
  | "renew"
  | "disconnect"
  | "seen"
  | "policy-get"
  | "policy-put"
  | "policy-preview";
export type ForwardedFrameAction = Exclude<SessionAction, NotAFrame>;
const NOT_FRAMES: ReadonlySet<string> = new Set<NotAFrame>([
  "events",
  "delete",
  "resume",
  "message",
  "renew",
  "disconnect",
  "seen",
  "policy-get",
  "policy-put",
  "policy-preview",
]);
export const FORWARDED_FRAME_ACTIONS: ReadonlySet<string> = new Set(
  FORWARDED_ACTIONS.filter((a) => !NOT_FRAMES.has(a)),
);

/**
 * One WebSocket connection's steering frames for sessions another node runs, carried to the
 * owner through the same forwarding as the HTTP routes (docs/cluster.md, "Requests to the
 * owner"): one after another, in the order the connection sent them, with the connection's id as
 * the control-lease key; a lease taken that way is released on the owner when the connection closes.
 */
export class WsForwarding {
  /** The connection's forwarded frames are answered in order: each answer waits for the one before. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Sessions whose control this connection took through the owner, by id: their owner. */
  private readonly controlled = new Map<string, string>();
  private disposed = false;

  constructor(
    private readonly core: GatewayCore,
    private readonly identity: Identity,
    private readonly connId: string,
    /** The connection's input budget (bytes and messages per second), charged here as on one node. */
    private readonly inputBudget: InputBudget,
  ) {}

  /** The node that runs `sessionId` when it is not this one (and the caller may see it). */
  owner(sessionId: string): string | undefined {
    return ownerElsewhere(this.core, sessionId, this.identity);
  }

  /**
   * Sends `action` to `owner` now, after the connection's earlier frames; resolves with the owner's
   * answer once this node's copy holds what it appended and the earlier frames are answered. Input is charged to the
   * connection's budget first (RATE_LIMITED, thrown at once) and given back if the owner refuses it.
   */
  run(
    owner: string,
    action: ForwardedFrameAction,
    sessionId: string,
    body: unknown,
    lease?: ForwardedLease,
  ): Promise<ForwardedAnswer> {
    let charged = 0;
    if (action === "input") {
      const { data, enc } = body as { data: string; enc?: "base64" | undefined };
      charged = inputBytes(data, enc).length;
      this.inputBudget.take(charged);
    }
    // Sent at once, answered in order: the owner starts its requests in the order they were sent
    // (NodeRpc), so a burst of keystrokes does not wait one round trip and commit per frame.
    const sent = forwardToOwner(this.core, owner, this.call(action, sessionId, body, lease));
    // Its failure is answered in turn below; until then it must not count as unhandled.
    sent.catch(() => undefined);
    const answer = this.queue.then(() => sent);
    this.queue = answer.catch(() => undefined);
    return answer.then(
      (result) => {
        if (action === "control") {
          const acquired = (body as { action: string }).action === "acquire";
          if (acquired && !this.disposed) this.controlled.set(sessionId, owner);
          else this.controlled.delete(sessionId);
          // Closed while it was on its way: the lease it took goes with the connection.
          if (acquired && this.disposed) this.release(sessionId, owner);
        }
        return result;
      },
      (error: unknown) => {
        this.inputBudget.giveBack(charged);
        throw error;
      },
    );
  }

  /**
   * Renews the lease this connection took through the owner of `sessionId`, if it did, as a
   * `ping` renews a local one: after its frames in flight, without an answer to wait for.
   */
  renew(sessionId: string): void {
    const owner = this.controlled.get(sessionId);
    if (owner === undefined || this.disposed) return;
    const call = this.call("renew", sessionId, {});
    this.queue = this.queue
      .then(() => forwardToOwner(this.core, owner, call))
      .catch((error: unknown) => {
        // A ping is not answered with an error on one node either; the owner unreachable or the
        // lease gone is told otherwise (NODE_UNAVAILABLE to the next frame, CONTROL_LOST).
        this.core.logger.debug({ sessionId, node: owner, err: error }, "renewing control through another node failed");
      });
  }

  /** The owner says this connection lost the lease of `sessionId` (taken over, expired): nothing to release there. */
  lost(sessionId: string): void {
    this.controlled.delete(sessionId);
  }

  /**
   * The connection closed: the leases it took through owners end there, after its frames in
   * flight (at once with `endLeases`, else after the grace period a clientKey asks for).
   */
  dispose(endLeases = false): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const [sessionId, owner] of this.controlled) this.release(sessionId, owner, endLeases);
    this.controlled.clear();
  }

  private release(sessionId: string, owner: string, now = true): void {
    const call = this.call("disconnect", sessionId, now ? { now } : {});
    this.queue = this.queue
      .then(() => forwardToOwner(this.core, owner, call))
      .catch((error: unknown) => {
        // The owner is gone or unreachable: its lease ends there by itself (auto-release,
        // takeover), so only a note is left.
        this.core.logger.warn(
          { sessionId, node: owner, by: actorOf(this.identity, this.connId), err: error },
          "control taken through another node was not released there when its WebSocket closed",
        );
      });
  }

  /** A frame's call as the owner runs it: the connection's id is its lease key and in its events' `by`. */
  private call(action: SessionAction, sessionId: string, body: unknown, lease?: ForwardedLease): SessionCall {
    const { identity, connId } = this;
    return { action, sessionId, identity, holderKey: connId, body, query: "", connId, ...(lease ? { lease } : {}) };
  }
}
