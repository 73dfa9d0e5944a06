import { SwitchboardError, customEvent, externalEventSchema } from "../../protocol/index.js";
import type { ExternalEvent } from "../../protocol/index.js";
import type { SessionLog } from "../../log/session-log.js";
import { StreamSession, appendExternalEvent } from "../../sessions/stream-session.js";
import type { SessionAnswer, SessionCall } from "../cluster/session-forwarding.js";
import type { GatewayCore } from "../context.js";
import { validate } from "../http/http.js";
import { sessionFor } from "../identity/access.js";

/*
 * A producer's append, one path for both transports: `POST /v1/sessions/:id/events`
 * (routes/sessions.ts) and a `/v1/ws` `append` frame (ws/multiplex-appends.ts) check and append
 * here, then answer once the batch is durable.
 */

/** A producer's batch, appended and not yet answered ({@link answerAppended}). */
export interface AppendedEvents {
  readonly log: SessionLog;
  readonly count: number;
  readonly first: number;
  readonly last: number;
  /** The log's drop count when it was appended (see SessionLog.whenPublished). */
  readonly drops: number;
}

/**
 * The part of `POST /v1/sessions/:id/events` that runs at once: the checks, then the append.
 * Throws what the route answers with when the batch is refused (then nothing is appended).
 */
export function appendEventsNow(core: GatewayCore, call: SessionCall): AppendedEvents {
  const session = sessionFor(core.sessions, call.identity, call.sessionId, "steer");
  const input = call.body;
  const items: unknown[] = Array.isArray(input) ? input : [input];
  if (items.length === 0) throw new SwitchboardError("VALIDATION_FAILED", "(root): send an event, or an array of them");
  if (items.length > core.limits.eventsPerAppend) {
    throw new SwitchboardError(
      "PAYLOAD_TOO_LARGE",
      `at most ${core.limits.eventsPerAppend} events per call (limits.eventsPerAppend)`,
    );
  }
  // Each checked against the kind of event its type names, so that a mistake names its field.
  const events: ExternalEvent[] = items.map(
    (item, i) => customEvent(item) ?? validate(externalEventSchema(item), item, Array.isArray(input) ? [i] : []),
  );
  session.assertRunning();
  session.log.assertWritable();
  // Validate the whole batch against the session kind before appending any of it.
  if (!(session instanceof StreamSession) && events.some((e) => e.type === "output" || e.type === "exit")) {
    throw new SwitchboardError(
      "WRONG_SESSION_KIND",
      "only stream sessions accept output and exit events from producers",
    );
  }
  const exitAt = events.findIndex((e) => e.type === "exit");
  if (exitAt >= 0 && exitAt !== events.length - 1) {
    throw new SwitchboardError("VALIDATION_FAILED", `${exitAt}: exit must be the last event of a batch`);
  }
  const stored =
    session instanceof StreamSession
      ? session.appendExternal(events)
      : events.map((e) => appendExternalEvent(session, e));
  const log = session.log;
  return { log, count: stored.length, first: stored[0]!.seq, last: stored[stored.length - 1]!.seq, drops: log.drops };
}

/**
 * Calls `then` with the answer to an append once it may be given, or with the refusal. A
 * producer faster than the store waits for it to catch up first, so that its next batch cannot
 * pile up in memory; and the answer's head includes the batch, so it waits until that is
 * published (durable). Callbacks, not promises: a `/v1/ws` producer's every append comes here
 * (docs/benchmarks.md, "Where a delivery's CPU goes").
 */
export function answerAppended(appended: AppendedEvents, then: (error: unknown, answer?: SessionAnswer) => void): void {
  const { log, count, first, last, drops } = appended;
  log.backlog.afterCatchingUp(() =>
    log.afterPublished(last, drops, (refusal) =>
      refusal !== undefined
        ? then(refusal)
        : then(undefined, { status: 200, body: { appended: count, first, last, head: log.head } }),
    ),
  );
}
