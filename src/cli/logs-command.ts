/** `switchboard logs`: a session's output, or an agent session's conversation, or its events; -f follows. */
import { isSwitchboardError } from "../client/errors.js";
import type { CliContext } from "./context.js";
import { intOption, runCommand, writeJson } from "./context.js";
import { EXIT } from "./exit-codes.js";
import { FollowNotices, follow, followEvents, keepPace } from "./follow.js";
import { sessionOperand } from "./session-ref.js";
import { QueryFilter } from "./terminal-queries.js";
import { Transcript } from "./transcript.js";
import { LOGS_USAGE } from "./commands.js";
import type { Command } from "./commands.js";

export const logs: Command = (argv) =>
  runCommand(
    argv,
    {
      usage: LOGS_USAGE,
      options: { follow: { type: "boolean", short: "f" }, since: { type: "string" } },
      positionals: 1,
    },
    async (ctx, parsed) => {
      const id = await sessionOperand(ctx, parsed);
      const since = intOption(parsed.values.since, "--since") ?? 0;
      const followIt = parsed.values.follow === true;
      if (ctx.json) return logEvents(ctx, id, since, followIt);
      if ((await ctx.http.getSession(id)).kind === "agent") return logConversation(ctx, id, since, followIt);
      // The gateway answers in pages (a few MiB each); read up to the end as it was at the first page.
      let page = await ctx.http.output(id, { since }).catch((error: unknown) => {
        // A --since retention passed: from what it kept, with the notice below (as attach does).
        const first = isSwitchboardError(error, "HISTORY_TRIMMED") ? error.details?.["first"] : undefined;
        if (typeof first !== "number") throw error;
        return ctx.http.output(id, { since: first });
      });
      // On a terminal, the output goes without the terminal queries in it (what vim asks when it
      // starts): this terminal would answer them, into the shell's input after logs (nothing
      // here reads them, and nothing asks now). Elsewhere it is the bytes as the session wrote them.
      const queries = (ctx.out as { isTTY?: boolean }).isTTY === true ? new QueryFilter() : undefined;
      const shown = (bytes: Uint8Array) => (queries ? queries.filter(bytes) : bytes);
      // `since` 0 is "from the start of what is retained": say what retention dropped, as -f does.
      const start = page.next - page.bytes.length;
      if (start > since)
        new FollowNotices(ctx.err).show(
          `output bytes ${since} to ${start} were dropped by retention; printing from byte ${start}`,
        );
      await write(ctx.out, shown(page.bytes));
      const end = page.total;
      while (page.next < end && page.bytes.length > 0) {
        page = await ctx.http.output(id, { since: page.next });
        await write(ctx.out, shown(page.bytes));
      }
      if (!followIt) return EXIT.OK;
      return follow(ctx, id, page.next, queries);
    },
  );

/** `logs` of an agent session: the conversation after seq `since`; with -f until the session ends. */
async function logConversation(ctx: CliContext, id: string, since: number, followIt: boolean): Promise<number> {
  const transcript = new Transcript(
    { text: (chunk) => ctx.out.write(chunk), note: (line) => ctx.out.write(`${line}\n`) },
    // Following, a permission request may be one to answer now: its line says how.
    followIt ? { sessionId: id } : {},
  );
  let last = since;
  for await (const event of ctx.http.allEvents(id, { since })) {
    transcript.push(event);
    last = event.seq;
    await keepPace(ctx.out);
  }
  if (!followIt) return EXIT.OK;
  const outcome = await followEvents(ctx, id, last, (event) => transcript.push(event));
  if ("code" in outcome) return outcome.code;
  return outcome.end?.type === "lost" ? new FollowNotices(ctx.err).lost(id) : EXIT.OK;
}

/** `logs --json`: the events after seq `since`, one per line; with -f until the session ends. */
async function logEvents(ctx: CliContext, id: string, since: number, followIt: boolean): Promise<number> {
  let last = since;
  let ended = false;
  let lost = false;
  for await (const event of ctx.http.allEvents(id, { since })) {
    // Seqs have no holes: a first event past the one asked for means retention dropped those.
    if (last === since && event.seq > since + 1)
      new FollowNotices(ctx.err).show(
        `events ${since + 1} to ${event.seq - 1} were dropped by retention; printing from seq ${event.seq}`,
      );
    writeJson(ctx, event);
    last = event.seq;
    if (event.type === "exit" || event.type === "lost") ended = true;
    if (event.type === "lost") lost = true;
    await keepPace(ctx.out);
  }
  if (!followIt) return EXIT.OK;
  // Following a session that is over: as if it had just ended (a lost one is a failure).
  if (ended) return lost ? EXIT.FAILURE : EXIT.OK;
  const outcome = await followEvents(ctx, id, last, (event) => writeJson(ctx, event));
  // (The lost event itself says it, in JSON.)
  if ("code" in outcome) return outcome.code;
  return outcome.end?.type === "lost" ? EXIT.FAILURE : EXIT.OK;
}

function write(stream: NodeJS.WritableStream, bytes: Uint8Array): Promise<void> {
  if (bytes.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => stream.write(bytes, (error) => (error ? reject(error) : resolve())));
}
