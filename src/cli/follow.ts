import { TerminalClient } from "../client/node.js";
import type { CliContext } from "./context.js";
import { interruption } from "./commands.js";
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
