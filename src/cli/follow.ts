import { TerminalClient } from "../client/node.js";
import type { ConnectionState, ResetInfo } from "../client/node.js";
import type { CliContext } from "./context.js";
import { EXIT } from "./exit-codes.js";
import { printable } from "./printable.js";

/**
 * `logs -f`: prints the session's output from byte `since` as it comes, across reconnects
 * (no byte lost or repeated), until the session ends (exit 0; 1 when it was lost, with a
 * notice) or Ctrl-C (exit 130). What the
 * output cannot say goes to stderr: a lost connection (once per outage) and its return, and
 * output that retention dropped before it could be read.
 */
export async function follow(ctx: CliContext, id: string, since: number): Promise<number> {
  const term = new TerminalClient({ ...ctx.target, session: id, since });
  const notices = new FollowNotices(ctx.err);
  const interrupted = interruption();
  const stops = [
    term.on("data", ({ bytes }) => ctx.out.write(bytes)),
    term.on("state", ({ state }) => notices.state(state)),
    // HISTORY_TRIMMED: the gateway's message says which bytes are gone and where output goes on.
    term.on("error", (error) => notices.show(`${error.message} (${error.code})`)),
  ];
  try {
    const ended = term.done.then((exit) => (exit.state === "lost" ? notices.lost(id) : EXIT.OK));
    return await Promise.race([ended, interrupted.promise]);
  } finally {
    for (const stop of stops) stop();
    interrupted.dispose();
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

/** Resolves with {@link EXIT.INTERRUPTED} on SIGINT/SIGTERM while following. */
export function interruption(): { promise: Promise<number>; dispose: () => void } {
  let onSignal: () => void = () => undefined;
  const promise = new Promise<number>((resolve) => {
    onSignal = () => resolve(EXIT.INTERRUPTED);
  });
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    promise,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
