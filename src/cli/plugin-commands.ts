/** `switchboard plugins`: the configured plugins' states, and restarting one. */
import type { PluginListing } from "../client/node.js";
import type { Command } from "./commands.js";
import { positional, runCommand, writeJson } from "./context.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { printable } from "./printable.js";
import { formatTable } from "./format.js";
import { truncateToWidth } from "./text-width.js";

export const PLUGINS_USAGE = `Usage: switchboard plugins [ID] [--json]
       switchboard plugins restart ID

Lists the plugins the gateway's config names, with their state (starting, running, restarting,
failed, stopped), restarts, agents, granted permissions and why one last crashed or failed; with
ID, that plugin alone. "restart" stops a plugin and starts it afresh, its restart count reset —
the way to retry a failed one after fixing what its error says (admins only). Exit code 1 when
the plugin is not running after the restart, 5 for no such plugin.`;

/** Longest error shown in the table, in columns: the rest is in `plugins ID` and --json. */
export const PLUGINS_ERROR_CHARS = 80;

const COLUMNS = ["ID", "STATE", "RESTARTS", "PID", "AGENTS", "PERMISSIONS", "LAST ERROR"] as const;

export const plugins: Command = (argv) =>
  runCommand(argv, { usage: PLUGINS_USAGE, options: {}, positionals: 2 }, async (ctx, parsed) => {
    const [first, second] = parsed.positionals;
    if (first === "restart") {
      const id = positional(parsed, 1, "the plugin id");
      const plugin = await ctx.http.restartPlugin(id);
      if (ctx.json) writeJson(ctx, plugin);
      else ctx.out.write(formatPlugin(plugin));
      return plugin.state === "running" ? EXIT.OK : EXIT.FAILURE;
    }
    if (second !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(second)}`);
    if (first !== undefined) {
      const plugin = await ctx.http.getPlugin(first);
      if (ctx.json) writeJson(ctx, plugin);
      else ctx.out.write(formatPlugin(plugin));
      return EXIT.OK;
    }
    const list = await ctx.http.listPlugins();
    if (ctx.json) writeJson(ctx, list);
    else if (list.length > 0) ctx.out.write(formatPluginTable(list));
    // On stderr: stdout stays empty for scripts that read the table.
    else ctx.err.write('no plugins configured; the config\'s "plugins.entries" names them (docs/plugins.md)\n');
    return EXIT.OK;
  });

/** The plugins as an aligned table, by id. */
export function formatPluginTable(list: readonly PluginListing[]): string {
  // Errors quote what a plugin wrote on stderr: escaped, so they cannot act on the terminal.
  const rows = list.map((p) => [
    printable(p.id),
    p.state,
    String(p.restarts),
    p.pid !== null ? String(p.pid) : "-",
    p.agents.length > 0 ? printable(p.agents.join(",")) : "-",
    p.permissions.length > 0 ? p.permissions.join(",") : "-",
    p.lastError !== null ? truncateToWidth(printable(firstLine(p.lastError)), PLUGINS_ERROR_CHARS) : "-",
  ]);
  return formatTable(COLUMNS, rows);
}

/** One plugin, a field a line, its whole last error included. */
export function formatPlugin(p: PluginListing): string {
  const fields: Array<[string, string]> = [
    ["id", printable(p.id)],
    ["state", p.state],
    ["restarts", String(p.restarts)],
    ["pid", p.pid !== null ? String(p.pid) : "-"],
    ["agents", p.agents.length > 0 ? printable(p.agents.join(", ")) : "-"],
    ["permissions", p.permissions.length > 0 ? p.permissions.join(", ") : "-"],
    ["public hooks", p.publicHooks ? `yes (/hooks/${printable(p.id)}/…, no token)` : "no"],
    ["last error", p.lastError !== null ? printable(p.lastError) : "-"],
  ];
  return fields.map(([name, value]) => `${`${name}:`.padEnd(14)}${value}\n`).join("");
}

function firstLine(text: string): string {
  const end = text.indexOf("\n");
  return end < 0 ? text : `${text.slice(0, end)} …`;
}
