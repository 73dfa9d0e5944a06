import type { SearchHit } from "../protocol/search.js";
import { SEARCH_PAGE_MAX } from "../protocol/search.js";
import { intOption, runCommand, writeJson } from "./context.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { printable } from "./printable.js";
import { resolveSession } from "./session-ref.js";
import type { Command } from "./commands.js";

export const GREP_USAGE = `Usage: switchboard grep PATTERN... [--session ID|NAME] [--limit N] [--json]

Searches the logs of every session this token may see (output, agent messages, prompts, tool
calls) and prints one line per hit, newest first: "SESSION:SEQ: snippet", the match in bold
when stdout is a terminal. Every word must match, as a whole word; a trailing * makes the last
one a prefix (build fail*). "switchboard logs SESSION --since SEQ" shows what follows a hit.
--session searches one session; --limit caps the hits (default 20, at most ${SEARCH_PAGE_MAX}).
With --json, prints each hit as a JSON object per line. Exits 1 when nothing matched.`;

const BOLD = "\x1b[1m";
const RESET = "\x1b[0m";

/** A hit as one line: its session (name, else id), seq and snippet on one line. */
export function formatHit(hit: SearchHit, color: boolean): string {
  let text = "";
  let at = 0;
  for (const [start, end] of hit.marks) {
    text += printable(hit.snippet.slice(at, start));
    const match = printable(hit.snippet.slice(start, end));
    text += color ? `${BOLD}${match}${RESET}` : match;
    at = end;
  }
  text += printable(hit.snippet.slice(at));
  return `${printable(hit.name ?? hit.sessionId)}:${hit.seq}: ${text.replace(/\s+/g, " ").trim()}\n`;
}

export const grep: Command = (argv) =>
  runCommand(
    argv,
    { usage: GREP_USAGE, options: { session: { type: "string" }, limit: { type: "string" } } },
    async (ctx, parsed) => {
      const q = parsed.positionals.join(" ");
      if (q.trim() === "") throw new UsageError("grep needs a PATTERN: the words to look for");
      const limit = intOption(parsed.values.limit, "--limit");
      if (limit !== undefined && (limit < 1 || limit > SEARCH_PAGE_MAX))
        throw new UsageError(`--limit takes 1 to ${SEARCH_PAGE_MAX}`);
      const ref = parsed.values.session;
      const session = typeof ref === "string" ? await resolveSession(ctx.http, ref) : undefined;
      const { hits } = await ctx.http.search(q, {
        ...(limit !== undefined ? { limit } : {}),
        ...(session !== undefined ? { session } : {}),
      });
      const color = (ctx.out as { isTTY?: boolean }).isTTY === true;
      for (const hit of hits) {
        if (ctx.json) writeJson(ctx, hit);
        else ctx.out.write(formatHit(hit, color));
      }
      return hits.length > 0 ? EXIT.OK : EXIT.FAILURE;
    },
  );
