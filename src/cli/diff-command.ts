import { diffLineKind } from "../core/unified-diff.js";
import { positional, runCommand, writeJson } from "./context.js";
import { EXIT } from "./exit-codes.js";
import type { Command } from "./commands.js";

export const DIFF_USAGE = `Usage: switchboard diff ID [RUN] [--json]

Prints the git patch of what an agent changed in files during run RUN (the session's latest
run when omitted): files it wrote through the gateway and edits it reported. \`git apply\` in the
session's directory makes the text changes; binary ones are named in "# " lines. Colored when
stdout is a terminal. With --json, the run's change list instead (per file: +/- lines, the tool
call, the diff). An unknown run is refused with RUN_NOT_FOUND, naming the latest runs.`;

const COLORS = { hunk: "\x1b[36m", add: "\x1b[32m", del: "\x1b[31m", header: "\x1b[1m" } as const;
const RESET = "\x1b[0m";

/** The patch with git's colors: headers bold, hunk lines cyan, added green, removed red. */
export function colorPatch(patch: string): string {
  let inHeader = false;
  return patch
    .split("\n")
    .map((line) => {
      if (line.startsWith("diff --git ")) inHeader = true;
      else if (line.startsWith("@@")) inHeader = false;
      if (line === "") return line;
      if (inHeader || line.startsWith("# ")) return `${COLORS.header}${line}${RESET}`;
      const kind = diffLineKind(line);
      return kind === "hunk" || kind === "add" || kind === "del" ? `${COLORS[kind]}${line}${RESET}` : line;
    })
    .join("\n");
}

export const diff: Command = (argv) =>
  runCommand(argv, { usage: DIFF_USAGE, options: {}, positionals: 2 }, async (ctx, parsed) => {
    const id = positional(parsed, 0, "the session id");
    const run = parsed.positionals[1] ?? "latest";
    if (ctx.json) {
      writeJson(ctx, await ctx.http.changes(id, { run }));
      return EXIT.OK;
    }
    const patch = await ctx.http.patch(id, run);
    ctx.out.write((ctx.out as { isTTY?: boolean }).isTTY === true ? colorPatch(patch) : patch);
    return EXIT.OK;
  });
