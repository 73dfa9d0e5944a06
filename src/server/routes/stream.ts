import { SwitchboardError } from "../../protocol/index.js";
import { isPublicError } from "../../protocol/errors.js";
import type { LogEntry } from "../../log/types.js";
import { sessionFor } from "../identity/access.js";
import { signInOf } from "../identity/auth.js";
import { resolveSession } from "../cluster/session-resolver.js";
import type { GatewayCore } from "../context.js";
import { SECURITY_HEADERS, intParam, typesParam } from "../http/http.js";
import type { Router } from "../http/router.js";
import { Viewer } from "../ws/viewer.js";
import type { Sink } from "../ws/sink.js";

/** A comment line is sent this often so proxies and clients see the stream is alive. */
export const SSE_HEARTBEAT_MS = 15_000;
/**
 * A stream whose writes have not moved for this many heartbeats in a row, with bytes waiting,
 * is taken for a dead or suspended peer and closed (30–45 s; a WebSocket peer is terminated
 * after two missed pings). SSE has no pong: a client that stopped reading is seen only by its
 * socket not taking data. It comes back with `Last-Event-ID` and gets what it missed.
 */
export const SSE_STALLED_HEARTBEATS = 2;
/** The reconnection delay suggested to EventSource clients. */
export const SSE_RETRY_MS = 2_000;

/**
 * `GET /v1/sessions/:id/stream`: the session's log as Server-Sent Events. `id:` is the seq;
 * a reconnecting EventSource sends `Last-Event-ID` and gets exactly the events after it.
 * Retention gaps arrive as an explicit `event: reset`. The stream ends after the session's
 * final event has been written, or after an `event: reset` with reason `deleted` when the
 * session is removed; a session that has ended with nothing after `since` is answered 204.
 */
export function streamRoutes(router: Router, core: GatewayCore): void {
  router.add("GET", "/v1/sessions/:id/stream", async (ctx) => {
    const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
    const lastEventId = ctx.req.headers["last-event-id"];
    let since: number;
    if (typeof lastEventId === "string" && lastEventId !== "") {
      if (!/^\d{1,16}$/.test(lastEventId)) throw new SwitchboardError("BAD_REQUEST", "Last-Event-ID must be a seq");
      since = Number(lastEventId);
    } else {
      since = intParam(ctx.url, "since", 0);
    }
    const types = typesParam(ctx.url);
    await resolveSession(core.sessions, session).reach(since);
    if (since > session.log.head) {
      try {
        session.log.checkPosition(since); // throws BAD_REQUEST before the stream starts
      } catch (error) {
        // Named as the client gave it: an EventSource's Last-Event-ID is no `since` it chose.
        if (typeof lastEventId === "string" && lastEventId !== "" && isPublicError(error))
          throw new SwitchboardError(error.code, error.message.replace(/^since=/, "Last-Event-ID "), error.details);
        throw error;
      }
    }
    if (!session.running && session.log.settled && since >= session.log.head) {
      // Ended, and nothing after `since`: 204 tells an EventSource to stop (a stream that ends at
      // once makes it reconnect every `retry` interval, forever).
      ctx.res.writeHead(204, SECURITY_HEADERS);
      ctx.res.end();
      return;
    }
    const { res } = ctx;
    const streamHeaders = {
      ...SECURITY_HEADERS,
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    };
    if (ctx.req.method === "HEAD") {
      // The headers a GET would get, and the end: a HEAD answer has no body, so a stream behind
      // it would never end and hold the connection (and a viewer) until the client closed it.
      res.writeHead(200, streamHeaders);
      res.end();
      return;
    }
    core.connections.check(ctx.identity);
    // A revoked token's stream just ends: EventSource reconnects and is answered 401.
    const releaseConnection = core.connections.open({ identity: ctx.identity, signIn: signInOf(ctx.req) }, () => end());
    const { share, release: releaseShare } = core.catchUp.hold(ctx.identity.principal);
    /**
     * Runs one of the stream's callbacks (a write's completion, a live event, the heartbeat, the
     * session's removal) so that nothing it throws reaches the process: the stream is cut and
     * the error logged with its peer; other streams and connections go on.
     */
    const guarded =
      <A extends unknown[]>(callback: (...args: A) => void) =>
      (...args: A): void => {
        try {
          callback(...args);
        } catch (error) {
          const peer = `${ctx.req.socket.remoteAddress}:${ctx.req.socket.remotePort}`;
          core.logger.error({ err: error, session: session.id, peer }, "an event stream failed; it was cut");
          ending = true;
          viewer?.close();
          res.destroy();
        }
      };

    res.writeHead(200, streamHeaders);
    res.flushHeaders();
    core.metrics.sseClients.inc();

    let queued = 0;
    /** The last `id:` written: the client's Last-Event-ID once it has read that far. */
    let lastId = since;
    /** Bytes the socket has taken so far (written through to the kernel). */
    let taken = 0;
    let ending = false;
    let viewer: Viewer | undefined = undefined;
    /**
     * Ends the stream, once, whichever comes first (the session's end, its removal, a revoked
     * token). Nothing is written after it: a write after the end is an error event on the
     * response, and a removal with `force` ends the session and removes it in one step.
     */
    const end = (last?: string) => {
      if (ending) return;
      if (last !== undefined) write(last);
      ending = true;
      viewer?.close();
      res.end();
    };
    const write = (text: string) => {
      if (ending || res.writableEnded || res.destroyed) return;
      const bytes = Buffer.byteLength(text);
      queued += bytes;
      share.add(bytes);
      res.write(
        text,
        guarded((error: Error | null | undefined) => {
          queued -= bytes;
          share.remove(bytes);
          taken += bytes;
          // A failed write means the client is gone (or the gateway is closing): do not read the log for it.
          if (error || ending || res.destroyed || viewer === undefined) return;
          if (queued < viewer.budgetBytes / 2) viewer.pump();
        }),
      );
    };
    const sink: Sink = {
      get queuedBytes() {
        return queued;
      },
      get open() {
        return !ending && !res.destroyed && !res.writableEnded;
      },
      deliver: guarded((entries: readonly LogEntry[]) => {
        let text = "";
        for (const e of entries) text += `id: ${e.seq}\ndata: ${e.json}\n\n`;
        if (entries.length > 0) lastId = entries[entries.length - 1]!.seq;
        write(text);
        endIfPast();
      }),
      trimmed: guarded((first: number, head: number) => {
        write(`event: reset\ndata: ${JSON.stringify({ reason: "trimmed", first, head })}\n\n`);
      }),
      removed: guarded(() =>
        end(
          `event: reset\ndata: ${JSON.stringify({ reason: "deleted", first: session.log.first, head: session.log.head })}\n\n`,
        ),
      ),
    };

    /**
     * An `id:` with no data for the events a type filter passed over since the last one written:
     * it moves the client's Last-Event-ID without dispatching an event, so a reconnect neither
     * scans them again nor is told of a retention gap in events it never wanted, and once the
     * session has ended it reconnects at the end and is answered 204 (stop) — a filtered stream
     * that ended at the last event it delivered made an EventSource reconnect every `retry`
     * interval, forever.
     */
    const skippedId = () => (viewer !== undefined && viewer.cursor > lastId ? `id: ${(lastId = viewer.cursor)}\n` : "");
    // The stream ends once the session has ended, its last event is published and the viewer has
    // passed it — delivered (live: at once; caught up: when it joins) or passed over by a type filter.
    const endIfPast = () => {
      if (ending || session.running || !session.log.settled || viewer === undefined || viewer.cursor < session.log.head)
        return;
      const id = skippedId();
      end(id === "" ? undefined : `${id}\n`);
    };
    write(`retry: ${SSE_RETRY_MS}\n\n`);
    viewer = new Viewer({
      core,
      log: session.log,
      session,
      watcher: ctx.identity.name,
      seq: Math.max(since, 0),
      sink,
      pacing: { scheduler: core.catchUp.scheduler, share },
      types,
      metrics: core.metrics,
      hooks: { onJoin: () => queueMicrotask(endIfPast), onSkip: endIfPast },
    });
    let stalled = 0;
    let takenAtLastBeat = taken;
    const beat = guarded(() => {
      stalled = queued > 0 && taken === takenAtLastBeat ? stalled + 1 : 0;
      takenAtLastBeat = taken;
      if (stalled >= SSE_STALLED_HEARTBEATS) {
        res.destroy();
        return;
      }
      write(`${skippedId()}: ping\n\n`);
      heartbeat = core.clock.setTimeout(beat, SSE_HEARTBEAT_MS);
    });
    let heartbeat = core.clock.setTimeout(beat, SSE_HEARTBEAT_MS);
    res.on("close", () => {
      releaseConnection();
      releaseShare();
      heartbeat.cancel();
      viewer?.close();
      core.metrics.sseClients.dec();
    });
    // A stream of an ended session whose last event was already delivered ends right away.
    viewer.start();
  });
}
