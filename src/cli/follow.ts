import { TerminalClient } from "../client/node.js";
import type { CliContext } from "./context.js";
import { EXIT } from "./exit-codes.js";

/**
 * `logs -f`: prints the session's output from byte `since` as it comes, across reconnects
 * (no byte lost or repeated), until the session ends (exit 0) or Ctrl-C (exit 130).
 */
export async function follow(ctx: CliContext, id: string, since: number): Promise<number> {
  const term = new TerminalClient({ ...ctx.target, session: id, since });
  const interrupted = interruption();
  const stop = term.on("data", ({ bytes }) => ctx.out.write(bytes));
  try {
    return await Promise.race([term.done.then(() => EXIT.OK), interrupted.promise]);
  } finally {
    stop();
    interrupted.dispose();
    term.close();
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
