import { once } from "node:events";
import { TerminalClient, connect } from "../client/node.js";
import type { ConnectionState, ResetInfo, SessionEvent } from "../client/node.js";
import type { CliContext } from "./context.js";
import { EXIT } from "./exit-codes.js";
import { printable } from "./printable.js";
import type { QueryFilter } from "./terminal-queries.js";
import { watchReader } from "./reader-gone.js";

/**
 * Past this many bytes written to stdout and not yet taken by its reader, a follower stops
 * taking output from the gateway until they are: a reader that stopped reading (a paused
 * `less`, a slow pipe) must not make the CLI hold a flooding session's output in memory. The
 * gateway keeps it; following goes on from the next byte once stdout has drained.
 */
export const FOLLOW_BUFFER_BYTES = 1 << 20;

/** Bytes written to `out` and not yet flushed (0 for a stream that does not say). */
export function unflushed(out: NodeJS.WritableStream): number {
  return (out as { writableLength?: number }).writableLength ?? 0;
}

/** Resolves once `out` has written what it holds (at once when it holds no more than it may). */
export async function drained(out: NodeJS.WritableStream): Promise<undefined> {
  if ((out as { writableNeedDrain?: boolean }).writableNeedDrain === true) await once(out, "drain");
  return undefined;
}

/** Waits for `out` to drain if its reader lags ({@link FOLLOW_BUFFER_BYTES}): for loops that print what they read. */
export async function keepPace(out: NodeJS.WritableStream): Promise<void> {
  if (unflushed(out) > FOLLOW_BUFFER_BYTES) await drained(out);
}

/**
 * `logs -f`: the session's output from byte `since`, across reconnects without loss or repeat,
 * until it ends (exit 0; 1 if lost) or Ctrl-C (130; SIGTERM 143). Outages and output retention
 * dropped go to stderr. While stdout lags ({@link FOLLOW_BUFFER_BYTES}) it stops following and
 * resumes from the next byte once drained.
 */
export async function follow(ctx: CliContext, id: string, since: number, queries?: QueryFilter): Promise<number> {
  const notices = new FollowNotices(ctx.err);
  const interrupted = interruption();
  try {
    let from = since;
    for (;;) {
      const outcome = await followUntilBackedUp(ctx, id, from, notices, interrupted.promise, queries);
      if (outcome.kind === "ended") return outcome.code;
      from = outcome.next;
      const code = await Promise.race([drained(ctx.out), interrupted.promise]);
      if (code !== undefined) return code;
    }
  } finally {
    interrupted.dispose();
  }
}

/** Follows from byte `since` until the session ends, Ctrl-C, or stdout backs up (then: the next byte). */
async function followUntilBackedUp(
  ctx: CliContext,
  id: string,
  since: number,
  notices: FollowNotices,
  interrupted: Promise<number>,
  queries: QueryFilter | undefined,
): Promise<{ kind: "ended"; code: number } | { kind: "backed-up"; next: number }> {
  const term = new TerminalClient({ ...ctx.target, session: id, since });
  let backedUp: () => void = () => undefined;
  const paused = new Promise<void>((resolve) => (backedUp = resolve));
  /** The byte after the last one written (more may come in the same tick as the backup: all are written). */
  let next = since;
  const stops = [
    term.on("data", ({ bytes, offset }) => {
      ctx.out.write(queries ? queries.filter(bytes) : bytes);
      next = offset + bytes.length;
      if (unflushed(ctx.out) > FOLLOW_BUFFER_BYTES) backedUp();
    }),
    term.on("state", ({ state }) => notices.state(state)),
    // HISTORY_TRIMMED: the gateway's message says which bytes are gone and where output goes on.
    term.on("error", (error) => notices.show(`${error.message} (${error.code})`)),
  ];
  try {
    const ended = term.done.then((exit) => (exit.state === "lost" ? notices.lost(id) : EXIT.OK));
    // Closing below rejects `done`; nothing waits for it then.
    ended.catch(() => undefined);
    const outcome = await Promise.race([ended, interrupted, paused.then(() => "backed-up" as const)]);
    // No output is taken after this (closed in the same step), so `next` is where to go on.
    term.close();
    return outcome === "backed-up" ? { kind: "backed-up", next } : { kind: "ended", code: outcome };
  } finally {
    for (const stop of stops) stop();
    term.close();
  }
}

/**
 * Notices of a follower (`logs -f`) on stderr, one line each: `connection lost; reconnecting`
 * once per outage (not per attempt), `reconnected` when it is back, and any gap retention made.
 */
export class FollowNotices {
  private outage = false;

  constructor(private readonly err: NodeJS.WritableStream) {}

  /** The client's connection state (`open` once the connection is back and following). */
  state(state: ConnectionState): void {
    if (state === "reconnecting" && !this.outage) {
      this.outage = true;
      this.show("connection lost; reconnecting");
    } else if (state === "open" && this.outage) {
      this.outage = false;
      this.show("reconnected");
    }
  }

  /** A subscription's reset: events it had not seen are gone. */
  reset(info: ResetInfo): void {
    if (info.reason === "deleted") this.show("the session was removed");
    else
      this.show(
        `events ${info.lastSeq + 1} to ${info.first - 1} were dropped by retention before they could be read; following from seq ${info.first}`,
      );
  }

  /**
   * The session was lost (the gateway stopped while it ran, without its exit status): said, as
   * `attach` says it, and the follower exits with {@link EXIT.FAILURE} — not as if it had ended well.
   */
  lost(id: string): number {
    this.show(`session ${id} was lost: the gateway stopped while it ran, so its exit status is unknown`);
    return EXIT.FAILURE;
  }

  show(text: string): void {
    this.err.write(`[switchboard] ${printable(text)}\n`);
  }
}

/**
 * Resolves with the exit code of a follower stopped by a signal: {@link EXIT.INTERRUPTED} on
 * SIGINT, {@link EXIT.TERMINATED} on SIGTERM (128 + its number, as `attach` and shells say it);
 * or whose output's reader went away ({@link EXIT.BROKEN_PIPE}, as at a write to it; see
 * {@link watchReader}), which on a quiet session it would not learn by writing.
 */
export function interruption(): { promise: Promise<number>; dispose: () => void } {
  let stop: (code: number) => void = () => undefined;
  const promise = new Promise<number>((resolve) => (stop = resolve));
  const onSignal = (signal: NodeJS.Signals): void => stop(signal === "SIGTERM" ? EXIT.TERMINATED : EXIT.INTERRUPTED);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const unwatch = watchReader(() => stop(EXIT.BROKEN_PIPE));
  return {
    promise,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      unwatch();
    },
  };
}

/**
 * Follows the events of session `id` after seq `since` (`logs -f` of events), handing each to
 * `onEvent`, until the session's end — resolves with its end event (`undefined` when none was
 * left to deliver) — or Ctrl-C (with the exit code). Lost connections are noticed on stderr
 * and resumed from the last event. While stdout's reader lags ({@link FOLLOW_BUFFER_BYTES}), it
 * unsubscribes, and subscribes again from the last event once stdout has drained: the gateway
 * keeps what comes meanwhile.
 */
export async function followEvents(
  ctx: CliContext,
  id: string,
  since: number,
  onEvent: (event: SessionEvent) => void,
): Promise<{ end: SessionEvent | undefined } | { code: number }> {
  const client = await connect(ctx.target);
  const notices = new FollowNotices(ctx.err);
  client.on("state", ({ state }) => notices.state(state));
  const interrupted = interruption();
  try {
    let last = since;
    for (;;) {
      let backedUp: () => void = () => undefined;
      const paused = new Promise<"backed-up">((resolve) => (backedUp = () => resolve("backed-up")));
      const sub = client.subscribe(
        id,
        { since: last, onReset: (info) => notices.reset(info) },
        (event: SessionEvent) => {
          onEvent(event);
          last = event.seq;
          if (unflushed(ctx.out) > FOLLOW_BUFFER_BYTES) backedUp();
        },
      );
      const outcome = await Promise.race([
        sub.done.then((end) => ({ end })),
        interrupted.promise.then((code) => ({ code })),
        paused,
      ]);
      // Nothing is delivered after this (same step), so `last` is where to go on.
      sub.unsubscribe();
      if (outcome !== "backed-up") return outcome;
      const code = await Promise.race([drained(ctx.out), interrupted.promise]);
      if (code !== undefined) return { code };
    }
  } finally {
    interrupted.dispose();
    client.close();
  }
}
