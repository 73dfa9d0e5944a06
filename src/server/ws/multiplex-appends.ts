import type { ClientFrame } from "../../protocol/index.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore } from "../context.js";
import { answerAppended, appendEventsNow } from "./event-appends.js";
import type { AppendedEvents } from "./event-appends.js";
import { forwardToOwner, ownerElsewhere } from "../cluster/session-forwarding.js";
import type { SessionCall } from "../cluster/session-forwarding.js";

export type AppendFrame = Extract<ClientFrame, { op: "append" }>;

/**
 * Appends a connection may have waiting for their acknowledgement: past it the connection is not
 * read until one is answered. Each holds its events until they are durable.
 */
export const APPENDS_IN_FLIGHT_MAX = 256;

/**
 * One `/v1/ws` connection's `append` frames: each runs as `POST /v1/sessions/:id/events` does
 * (the same checks, limits and validation, forwarded to the owner in cluster mode), in the order
 * they came, and is acknowledged with its seqs once they are durable, in that order too. While
 * the session's store is behind (the credit that holds a POST's answer back, LOG_BACKLOG_PAUSE_BYTES)
 * or {@link APPENDS_IN_FLIGHT_MAX} wait, the connection's frames are not read.
 */
export class MultiplexAppends {
  /** The appends not yet answered, in frame order: each is answered after the ones before it. */
  private readonly waiting: WaitingAppend[] = [];
  private releaseHold: (() => void) | undefined;

  constructor(
    private readonly o: {
      core: GatewayCore;
      identity: Identity;
      connId: string;
      holdReads: () => () => void;
      ack: (ref: NonNullable<AppendFrame["ref"]>, result: unknown) => void;
      refuse: (frame: AppendFrame, error: unknown) => void;
      disposed: () => boolean;
    },
  ) {}

  append(frame: AppendFrame): void {
    const { core, identity, connId } = this.o;
    const call: SessionCall = {
      action: "events",
      sessionId: frame.session,
      identity,
      holderKey: connId,
      body: frame.events,
      query: "",
      connId,
    };
    const waiting: WaitingAppend = { frame, state: "waiting", answer: undefined };
    this.waiting.push(waiting);
    if (this.waiting.length >= APPENDS_IN_FLIGHT_MAX) this.releaseHold ??= this.o.holdReads();
    // Started now, so that the events are appended in the order the frames came.
    const owner = ownerElsewhere(core, frame.session, identity);
    if (owner === undefined) this.appendHere(call, waiting);
    else {
      forwardToOwner(core, owner, call).then(
        (answer) => this.answer(waiting, "acked", answer.body),
        (error: unknown) => this.answer(waiting, "refused", error),
      );
    }
    const room = core.sessions.get(frame.session)?.log.backlog.room();
    if (room !== undefined) {
      const release = this.o.holdReads();
      void room.then(release);
    }
  }

  /** The connection closed: holds end with it. */
  dispose(): void {
    this.releaseHold?.();
    this.releaseHold = undefined;
  }

  /** As `POST /v1/sessions/:id/events` runs it, without its promises (see answerAppended). */
  private appendHere(call: SessionCall, waiting: WaitingAppend): void {
    let appended: AppendedEvents;
    try {
      appended = appendEventsNow(this.o.core, call);
    } catch (error) {
      this.answer(waiting, "refused", error);
      return;
    }
    answerAppended(appended, (error, answer) =>
      error === undefined ? this.answer(waiting, "acked", answer!.body) : this.answer(waiting, "refused", error),
    );
  }

  /** One append's answer: sends it, and those after it that were waiting for it, in frame order. */
  private answer(waiting: WaitingAppend, state: "acked" | "refused", answer: unknown): void {
    waiting.state = state;
    waiting.answer = answer;
    const queue = this.waiting;
    while (queue.length > 0 && queue[0]!.state !== "waiting") {
      const next = queue.shift()!;
      if (this.o.disposed()) continue;
      if (next.state === "refused") this.o.refuse(next.frame, next.answer);
      else if (next.frame.ref !== undefined) this.o.ack(next.frame.ref, next.answer);
    }
    if (queue.length < APPENDS_IN_FLIGHT_MAX / 2 && this.releaseHold !== undefined) {
      this.releaseHold();
      this.releaseHold = undefined;
    }
  }
}

/** An append frame and, once it has one, its answer: the ack's result, or the error it was refused with. */
interface WaitingAppend {
  readonly frame: AppendFrame;
  state: "waiting" | "acked" | "refused";
  answer: unknown;
}
