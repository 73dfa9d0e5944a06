import type { ClientFrame } from "../protocol/index.js";
import type { Identity } from "./auth.js";
import type { GatewayCore } from "./context.js";
import { runSessionAction } from "./routes/sessions.js";
import { forwardToOwner, ownerElsewhere } from "./session-forwarding.js";
import type { SessionAnswer, SessionCall } from "./session-forwarding.js";

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
  /** The answers in frame order: each is sent after the one before it. */
  private answered: Promise<void> = Promise.resolve();
  private inFlight = 0;
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
    const owner = ownerElsewhere(core, frame.session, identity);
    // Started now, so that the events are appended in the order the frames came.
    const answer: Promise<SessionAnswer> =
      owner === undefined ? runSessionAction(core, call) : forwardToOwner(core, owner, call);
    answer.catch(() => undefined); // answered in turn below
    this.inFlight++;
    const room = core.sessions.get(frame.session)?.log.backlog.room();
    if (room !== undefined) {
      const release = this.o.holdReads();
      void room.then(release);
    }
    if (this.inFlight >= APPENDS_IN_FLIGHT_MAX) this.releaseHold ??= this.o.holdReads();
    this.answered = this.answered.then(() =>
      answer.then(
        (result) => this.settled(() => frame.ref !== undefined && this.o.ack(frame.ref, result.body)),
        (error: unknown) => this.settled(() => this.o.refuse(frame, error)),
      ),
    );
  }

  /** The connection closed: holds end with it. */
  dispose(): void {
    this.releaseHold?.();
    this.releaseHold = undefined;
  }

  private settled(answer: () => unknown): void {
    this.inFlight--;
    if (this.inFlight < APPENDS_IN_FLIGHT_MAX / 2 && this.releaseHold !== undefined) {
      this.releaseHold();
      this.releaseHold = undefined;
    }
    if (!this.o.disposed()) answer();
  }
}
