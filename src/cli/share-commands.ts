/** `switchboard share`: a link that opens one session (read-only, or able to ask for control), its list, and revoking it. */
import type { ShareListing } from "../client/node.js";
import { SHARE_TTL_MAX_MS, SHARE_TTL_MIN_MS } from "../protocol/index.js";
import { parseDuration } from "../core/units.js";
import type { Command } from "./commands.js";
import { positional, runCommand, writeJson } from "./context.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { formatTable } from "./format.js";
import { printable } from "./printable.js";
import { sessionOperand } from "./session-ref.js";

export const SHARE_USAGE = `Usage: switchboard share ID [--name NAME] [--ttl 24h] [--allow-control]
                         [--base URL] [--json]
       switchboard share ls ID
       switchboard share revoke ID SHARE_ID

Prints a link that opens session ID only (admins and the session's operators): a teammate who
opens it watches that session and nothing else, read-only; with --allow-control it may take
control when nobody holds it. The link works until --ttl (1m to 7d; default 24h) or until it is
revoked, which closes its open connections at once. It starts with --base (default the
gateway's --url); the same secret is printed as a bearer token with --json. NAME (default
"link") is what the session shows as watching ("share:NAME").`;

export const share: Command = (argv) =>
  runCommand(
    argv,
    {
      usage: SHARE_USAGE,
      options: {
        name: { type: "string" },
        ttl: { type: "string" },
        "allow-control": { type: "boolean" },
        base: { type: "string" },
      },
      positionals: 3,
    },
    async (ctx, parsed) => {
      const [first] = parsed.positionals;
      if (first === "revoke") {
        const session = await sessionOperand(ctx, parsed, 1);
        const revoked = await ctx.http.revokeShare(session, positional(parsed, 2, "the share link's id"));
        if (ctx.json) writeJson(ctx, revoked);
        else ctx.err.write(`revoked ${printable(revoked.identity)} (${revoked.id})\n`);
        return EXIT.OK;
      }
      if (first === "ls") {
        const list = await ctx.http.listShares(await sessionOperand(ctx, parsed, 1));
        if (ctx.json) writeJson(ctx, list);
        else if (list.length > 0) ctx.out.write(formatShares(list));
        else ctx.err.write('no live share links; "switchboard share ID" makes one\n');
        return EXIT.OK;
      }
      if (parsed.positionals.length > 1) throw new UsageError("share takes one session ID");
      const session = await sessionOperand(ctx, parsed, 0);
      const { name, ttl } = parsed.values;
      const base = (parsed.values.base ?? ctx.target.url).replace(/\/+$/, "");
      const made = await ctx.http.createShare(session, {
        base,
        ...(name !== undefined ? { name } : {}),
        ...(ttl !== undefined ? { ttlMs: ttlOption(ttl) } : {}),
        ...(parsed.values["allow-control"] === true ? { allowControl: true } : {}),
      });
      if (ctx.json) {
        writeJson(ctx, made);
        return EXIT.OK;
      }
      ctx.out.write(`${made.url}\n`);
      const until = new Date(made.expiresAt).toISOString().slice(0, 16).replace("T", " ");
      ctx.err.write(
        `opens session ${session} as ${printable(made.share.identity)}, ${made.share.allowControl ? "may take control when free" : "read-only"}, until ${until} UTC; "switchboard share revoke ${session} ${made.id}" ends it\n`,
      );
      return EXIT.OK;
    },
  );

function formatShares(list: readonly ShareListing[]): string {
  const when = (t: number) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
  const rows = list.map((s) => [
    s.id,
    printable(s.name),
    s.allowControl ? "control" : "read-only",
    when(s.createdAt),
    when(s.expiresAt),
  ]);
  return formatTable(["ID", "NAME", "RIGHTS", "MADE", "EXPIRES"], rows);
}

function ttlOption(text: string): number {
  const ms = parseDuration(text);
  if (typeof ms !== "number" || ms < SHARE_TTL_MIN_MS || ms > SHARE_TTL_MAX_MS)
    throw new UsageError(`--ttl takes a duration from 1m to 7d (e.g. 24h), not ${JSON.stringify(text)}`);
  return ms;
}
