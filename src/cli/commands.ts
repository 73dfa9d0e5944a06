import { isIP } from "node:net";
import { resolve } from "node:path";
// The commands' common path loads neither zod nor the WebSocket client (docs/cli.md, "Start
// time"): modules from their files, not the indexes; the heavier commands on demand.
import { ConnectionError } from "../client/errors.js";
import type { SessionInfo } from "../client/node.js";
import { isPublicError } from "../protocol/errors.js";
import { SESSION_STATES, SIGNALS, signalName } from "../protocol/session-constants.js";
import type { SessionState } from "../protocol/session-constants.js";
import { matchSessions, resolveSession, sessionOperand } from "./session-ref.js";
import { DEFAULT_DETACH_KEY, detachKeyOption } from "./detach-key.js";
import { intOption, positional, reportError, runCommand, writeJson } from "./context.js";
import type { CliContext } from "./context.js";
import { EXIT, UsageError, exitCodeFor } from "./exit-codes.js";
import { formatSessionLine, formatSessionTable } from "./format.js";
import { inputPieces } from "./input-pieces.js";
import { isInteractiveShell } from "./interactive-shell.js";
import { printable } from "./printable.js";

/** A client command: argv after the command name in, exit code out. */
export type Command = (argv: string[]) => Promise<number>;

export const RUN_USAGE = `Usage: switchboard run [--pty | --no-pty] [--name N] [--cwd D] [--worktree BRANCH [--base REF]] [--env K=V]... [--attach] [--json] [--] CMD ARGS...
       switchboard run --agent AGENT [--name N] [--cwd D] [--worktree BRANCH [--base REF]] [--json]

Starts CMD as a terminal session and prints its id (or, with --json, the session).
Options go before CMD: from CMD on, everything is the command's (run make -j4 --keep-going).
--pty runs it in a pseudo-terminal (needed for interactive programs) sized like this
terminal. A shell given no script or -c (run bash, run zsh -l) gets one without --pty, as on
pipes it would show no prompt; --no-pty keeps pipes. --cwd defaults to the current directory
when the gateway is on this machine.
--attach attaches right away (see "switchboard attach --help").
--agent starts an agent session instead: AGENT is an agent id of the gateway's config (the
built-in "echo" needs none); "switchboard prompt ID TEXT" prompts it.
--worktree BRANCH runs it in a new git worktree of the repository at --cwd (the current
directory by default) on BRANCH, made from --base (default: the repository's current branch)
when it does not exist; the repository must be inside the gateway's worktrees.roots.`;

export const ATTACH_USAGE = `Usage: switchboard attach ID|NAME [--read-only | --force] [--since BYTE] [--detach-key KEY]

Shows the session's terminal here: a terminal session's screen as the gateway keeps it (other
sessions' output replayed from byte 0; --since BYTE replays from there), then follows live. Keys are sent to the session, which takes its control
lease when nobody holds it (when someone does, attach says so and watches read-only; --force
takes control over, and the one who had it goes on watching). The local size is sent on start and on every resize. ${DEFAULT_DETACH_KEY.name} detaches; the session keeps running
(--detach-key ctrl-q, or $SWITCHBOARD_DETACH_KEY, picks another: ctrl-a to ctrl-z, ctrl-\\ ] ^ _).
When the session ends, attach exits with its exit code (128+N when killed by signal N).`;

export const LS_USAGE = `Usage: switchboard ls [ID|NAME] [--state STATE[,STATE]] [--json]

Lists the sessions this token may see, oldest first; with ID or NAME only the sessions of that
id or name; --state only those running, exited or lost.`;

export const LOGS_USAGE = `Usage: switchboard logs ID|NAME [-f] [--since BYTE] [--json]

Prints the session's output from byte --since (default 0); -f keeps following until it ends.
For an agent session, prints the conversation instead: each prompt as "> text", the answers,
tool calls and permission requests; --since is then the last seq you have.
With --json, prints the session's events, one JSON object per line, and --since is the last
seq you have.`;

export const SEND_USAGE = `Usage: switchboard send ID [-n] [--eof] [--] TEXT...

Types TEXT into the session followed by Enter (-n: without). Options go before TEXT: from its
first word on, everything is typed as it is (send ID grep -n foo). Put -- before TEXT that
starts with "-" (switchboard send ID -- ls -la), or it is read as options. --eof then ends the input
(TEXT may be left out): a pipe session's stdin is closed, so sort or wc finish; a PTY gets
Ctrl-D. Refused with exit code 6 while someone else holds control (e.g. an attached terminal).`;

export const SIGNAL_USAGE = `Usage: switchboard signal ID SIGNAL

Sends SIGNAL (${SIGNALS.join(", ")}; with or without SIG) to the session's process group;
in a PTY to the terminal's foreground process group, where Ctrl-C goes (the command a shell runs).`;

export const KILL_USAGE = `Usage: switchboard kill [--remove-worktree [--discard-changes]] ID

Terminates the session and prints how it ended: TERM (a PTY is hung up first, HUP, as when a
terminal closes, so a shell ends with its jobs), then KILL after a grace period.
--remove-worktree then removes the session's git worktree (its branch stays); uncommitted work
refuses it before anything stops, unless --discard-changes.`;

export const SHUTDOWN_USAGE = `Usage: switchboard shutdown [--sessions]

Stops the gateway (admins only), as SIGTERM does: held terminal sessions keep running under
their holders and the next serve adopts them. --sessions ends every session's process too (as
sessions.onStop "end" does at every stop). Returns once the gateway took the request; it
exits after committing what it read.`;

export const RM_USAGE = `Usage: switchboard rm [-f] [--remove-worktree [--discard-changes]] ID...
       switchboard rm --ended [--older-than AGE]

Removes sessions for good: their record and everything they logged, with the terminals an
agent session ran. A running session is refused unless -f (--force): it is terminated first.
--remove-worktree and --discard-changes remove the session's git worktree, as kill's do.
--ended removes every ended session this token may steer; with --older-than (e.g. 90s, 30m,
12h, 7d) only those that ended longer ago than AGE.`;

const run: Command = (argv) =>
  runCommand(
    argv,
    {
      usage: RUN_USAGE,
      options: {
        pty: { type: "boolean" },
        "no-pty": { type: "boolean" },
        name: { type: "string" },
        cwd: { type: "string" },
        env: { type: "string", multiple: true },
        attach: { type: "boolean" },
        agent: { type: "string" },
        worktree: { type: "string" },
        base: { type: "string" },
      },
      operandsAfter: 0,
    },
    async (ctx, { values, positionals }) => {
      if (values.agent !== undefined) return runAgent(ctx, values, positionals);
      if (positionals.length === 0) throw new UsageError("missing the command to run (CMD ARGS...)");
      // Attached, the output is the session's terminal: there is no JSON to give.
      if (values.attach === true && ctx.json) throw new UsageError("--attach and --json exclude each other");
      const env: Record<string, string> = {};
      for (const pair of values.env ?? []) {
        const eq = pair.indexOf("=");
        if (eq <= 0) throw new UsageError(`--env takes NAME=VALUE, not ${pair}`);
        env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      if (values.pty === true && values["no-pty"] === true)
        throw new UsageError("--pty and --no-pty exclude each other");
      // A shell to type into needs a terminal (src/cli/interactive-shell.ts).
      const shell = values.pty !== true && values["no-pty"] !== true && isInteractiveShell(positionals);
      if (shell && !ctx.json)
        ctx.err.write(
          `${printable(positionals[0]!)} is an interactive shell: running it in a PTY, as --pty does (--no-pty runs it on pipes)\n`,
        );
      const pty = values.pty === true || shell;
      const size = pty && process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : {};
      const session = await ctx.http.createSession({
        command: positionals,
        pty,
        ...size,
        ...whereToRun(ctx, values),
        ...(values.name !== undefined ? { name: values.name } : {}),
        ...(Object.keys(env).length > 0 ? { env } : {}),
      });
      if (values.attach === true) {
        const detachKey = detachKeyOption(undefined);
        const { attach } = await import("./attach.js");
        return attach({
          target: ctx.target,
          http: ctx.http,
          session: session.id,
          info: session,
          readOnly: false,
          since: 0,
          ...(detachKey ? { detachKey } : {}),
        });
      }
      if (ctx.json) writeJson(ctx, session);
      else ctx.out.write(`${session.id}\n`);
      return EXIT.OK;
    },
  );

/** `cwd`, or with --worktree the `worktree` of the repository at --cwd (the current directory by default). */
function whereToRun(
  ctx: CliContext,
  values: { cwd?: string; worktree?: string; base?: string },
): { cwd?: string; worktree?: { repo: string; branch: string; base?: string } } {
  const cwd = cwdFor(ctx, values.cwd);
  if (values.worktree === undefined) {
    if (values.base !== undefined) throw new UsageError("--base goes with --worktree");
    return cwd !== undefined ? { cwd } : {};
  }
  if (cwd === undefined) throw new UsageError("--worktree needs --cwd: the repository's path on the gateway's machine");
  return {
    worktree: { repo: cwd, branch: values.worktree, ...(values.base !== undefined ? { base: values.base } : {}) },
  };
}

/** A relative --cwd means from here when the gateway is on this machine (the gateway refuses relative paths). */
function cwdFor(ctx: CliContext, cwd: string | undefined): string | undefined {
  const local = isLocal(ctx.target.url);
  return cwd !== undefined ? (local ? resolve(cwd) : cwd) : local ? currentDirectory() : undefined;
}

/** The current directory, or a usage error saying what to do when it was removed (uv_cwd ENOENT). */
function currentDirectory(): string {
  try {
    return process.cwd();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    throw new UsageError("the current directory was removed: cd to one that exists, or give --cwd");
  }
}

/** `run --agent AGENT`: an agent session, prompted with `prompt`. */
async function runAgent(
  ctx: CliContext,
  values: {
    agent?: string;
    name?: string;
    cwd?: string;
    pty?: boolean;
    "no-pty"?: boolean;
    env?: string[];
    attach?: boolean;
    worktree?: string;
    base?: string;
  },
  positionals: readonly string[],
): Promise<number> {
  // An agent is told what to do by prompts, not a command line, and has no terminal of its own.
  if (positionals.length > 0)
    throw new UsageError(
      `--agent takes no command (${positionals[0]}...): prompt the session with "switchboard prompt ID TEXT"`,
    );
  for (const option of ["pty", "no-pty", "env", "attach"] as const)
    if (values[option] !== undefined) throw new UsageError(`--agent and --${option} exclude each other`);
  const session = await ctx.http.createSession({
    kind: "agent",
    agent: values.agent!,
    ...whereToRun(ctx, values),
    ...(values.name !== undefined ? { name: values.name } : {}),
  });
  if (ctx.json) writeJson(ctx, session);
  else ctx.out.write(`${session.id}\n`);
  return EXIT.OK;
}

const attachCommand: Command = (argv) =>
  runCommand(
    argv,
    {
      usage: ATTACH_USAGE,
      options: {
        "read-only": { type: "boolean" },
        force: { type: "boolean" },
        since: { type: "string" },
        "detach-key": { type: "string" },
      },
      positionals: 1,
    },
    async (ctx, parsed) => {
      const session = await sessionOperand(ctx, parsed);
      const since = intOption(parsed.values.since, "--since") ?? "screen";
      const readOnly = parsed.values["read-only"] === true;
      const force = parsed.values.force === true;
      if (readOnly && force) throw new UsageError("--read-only and --force exclude each other");
      const detachKey = detachKeyOption(parsed.values["detach-key"]);
      const { attach } = await import("./attach.js");
      return attach({
        target: ctx.target,
        http: ctx.http,
        session,
        readOnly,
        force,
        since,
        ...(detachKey ? { detachKey } : {}),
      });
    },
  );

const ls: Command = (argv) =>
  runCommand(argv, { usage: LS_USAGE, options: { state: { type: "string" } }, positionals: 1 }, async (ctx, parsed) => {
    const state = stateOption(parsed.values.state);
    const ref = parsed.positionals[0];
    // Every page: the gateway answers at most 1000 sessions at a time.
    const all = await ctx.http.listSessions(state ? { state } : {});
    // A gateway older than paging answers in its own order.
    const sessions =
      ref !== undefined ? matchSessions(all, ref).sessions : all.sort((a, b) => a.createdAt - b.createdAt);
    if (ctx.json) writeJson(ctx, sessions);
    else if (sessions.length > 0) ctx.out.write(formatSessionTable(sessions, Date.now()));
    // On stderr: stdout stays empty for scripts that read the table.
    else if (ref !== undefined)
      ctx.err.write(`no session has the id, name or id prefix ${printable(ref.slice(0, 200))}\n`);
    else ctx.err.write('no sessions; "switchboard run -- CMD" starts one\n');
    return EXIT.OK;
  });

function stateOption(value: string | boolean | undefined): SessionState[] | undefined {
  if (typeof value !== "string") return undefined;
  const states = value.split(",");
  for (const s of states) {
    if (!(SESSION_STATES as readonly string[]).includes(s)) {
      throw new UsageError(`--state takes ${SESSION_STATES.join(", ")} (comma-separated), not ${JSON.stringify(s)}`);
    }
  }
  return states as SessionState[];
}

// Loaded on demand, with the WebSocket client behind -f.
const logs: Command = async (argv) => (await import("./logs-command.js")).logs(argv);

const send: Command = (argv) =>
  runCommand(
    argv,
    {
      usage: SEND_USAGE,
      options: { "no-newline": { type: "boolean", short: "n" }, eof: { type: "boolean" } },
      operandsAfter: 1,
    },
    async (ctx, parsed) => {
      positional(parsed, 0, "the session id or name");
      const words = parsed.positionals.slice(1);
      const eof = parsed.values.eof === true;
      if (words.length === 0 && !eof) throw new UsageError("missing TEXT (or --eof)");
      const id = await sessionOperand(ctx, parsed);
      let text = words.join(" ");
      if (words.length > 0 && parsed.values["no-newline"] !== true) {
        // Enter is CR on a terminal (programs in raw mode see exactly that), LF on a pipe.
        const session = await ctx.http.getSession(id);
        text += session.pty ? "\r" : "\n";
      }
      // The gateway takes at most 64 KiB per message: a longer TEXT goes in pieces, in order,
      // the end of input (--eof) with the last.
      const pieces = inputPieces(text);
      let result: Awaited<ReturnType<typeof ctx.http.input>> = { ok: true, bytes: 0 };
      for (const [i, piece] of pieces.entries()) {
        const last = i === pieces.length - 1;
        const sent = await ctx.http.input(id, piece, { eof: eof && last });
        result = { ...sent, bytes: result.bytes + sent.bytes };
      }
      if (ctx.json) writeJson(ctx, result);
      return EXIT.OK;
    },
  );

const signal: Command = (argv) =>
  runCommand(argv, { usage: SIGNAL_USAGE, options: {}, positionals: 2 }, async (ctx, parsed) => {
    const name = positional(parsed, 1, "the signal");
    // A signal the gateway does not take is a mistake on this command line (exit 2), said here.
    if (signalName(name) === undefined)
      throw new UsageError(
        `SIGNAL is a name, one of ${SIGNALS.join(", ")} (with or without SIG), not ${JSON.stringify(name)}`,
      );
    const id = await sessionOperand(ctx, parsed);
    const result = await ctx.http.signal(id, name);
    if (ctx.json) writeJson(ctx, result);
    return EXIT.OK;
  });

/** --remove-worktree and --discard-changes of `kill` and `rm`. */
const WORKTREE_OPTIONS = {
  "remove-worktree": { type: "boolean" },
  "discard-changes": { type: "boolean" },
} as const;

function worktreeRemoval(values: { "remove-worktree"?: boolean; "discard-changes"?: boolean }): {
  removeWorktree?: boolean;
  discardChanges?: boolean;
} {
  if (values["discard-changes"] === true && values["remove-worktree"] !== true)
    throw new UsageError("--discard-changes goes with --remove-worktree");
  return values["remove-worktree"] === true
    ? { removeWorktree: true, ...(values["discard-changes"] === true ? { discardChanges: true } : {}) }
    : {};
}

const kill: Command = (argv) =>
  runCommand(argv, { usage: KILL_USAGE, options: WORKTREE_OPTIONS, positionals: 1 }, async (ctx, parsed) => {
    const id = await sessionOperand(ctx, parsed);
    const session: SessionInfo = await ctx.http.deleteSession(id, worktreeRemoval(parsed.values));
    if (ctx.json) writeJson(ctx, session);
    else ctx.out.write(`${formatSessionLine(session)}\n`);
    return EXIT.OK;
  });

const shutdown: Command = (argv) =>
  runCommand(
    argv,
    { usage: SHUTDOWN_USAGE, options: { sessions: { type: "boolean" } }, positionals: 0 },
    async (ctx, parsed) => {
      const result = await ctx.http.shutdown({ sessions: parsed.values.sessions === true ? "end" : "keep" });
      if (ctx.json) writeJson(ctx, result);
      else
        ctx.out.write(
          result.sessions === "end"
            ? "the gateway is stopping and ending every session\n"
            : "the gateway is stopping; held terminal sessions keep running for the next serve\n",
        );
      return EXIT.OK;
    },
  );

const rm: Command = (argv) =>
  runCommand(
    argv,
    {
      usage: RM_USAGE,
      options: {
        force: { type: "boolean", short: "f" },
        ended: { type: "boolean" },
        "older-than": { type: "string" },
        ...WORKTREE_OPTIONS,
      },
    },
    async (ctx, parsed) => {
      const force = parsed.values.force === true;
      const worktree = worktreeRemoval(parsed.values);
      const olderThan = parsed.values["older-than"];
      let ids = parsed.positionals;
      if (parsed.values.ended === true) {
        if (ids.length > 0) throw new UsageError("give session ids or --ended, not both");
        const maxEndedAt = olderThan === undefined ? Infinity : Date.now() - durationOption("--older-than", olderThan);
        const sessions = await ctx.http.listSessions();
        const listed = new Set(sessions.map((s) => s.id));
        // Children go with their parent.
        ids = sessions
          .filter((s) => s.state !== "running" && (s.endedAt ?? 0) <= maxEndedAt)
          .filter((s) => s.parent === null || !listed.has(s.parent))
          .map((s) => s.id);
      } else {
        if (olderThan !== undefined) throw new UsageError("--older-than goes with --ended");
        if (ids.length === 0) throw new UsageError("missing ID (or --ended)");
      }
      const removed: SessionInfo[] = [];
      const errors: Array<{ id: string; error: unknown }> = [];
      let skipped = 0;
      for (const id of ids) {
        try {
          // --ended gives ids; given ones may be names or id prefixes.
          const resolved = parsed.values.ended === true ? id : await resolveSession(ctx.http, id);
          const gone = await ctx.http.removeSession(resolved, { force, ...worktree });
          removed.push(...gone);
          if (!ctx.json)
            for (const s of gone)
              ctx.out.write(`removed ${printable(s.id)}${s.name ? ` (${printable(s.name)})` : ""}\n`);
        } catch (error) {
          // One refusal does not stop the others; each is reported, the first sets the exit code.
          if (error instanceof ConnectionError) throw error;
          // --ended goes through what the token may see: one it may only watch, or one removed
          // meanwhile (with its parent, by retention), is not the caller's mistake.
          const code = isPublicError(error) ? error.code : undefined;
          if (parsed.values.ended === true && (code === "FORBIDDEN" || code === "SESSION_NOT_FOUND")) {
            skipped++;
            continue;
          }
          errors.push({ id, error });
          if (!ctx.json) reportError(ctx, error);
        }
      }
      if (ctx.json) {
        writeJson(ctx, {
          removed,
          skipped,
          // Shaped as --json errors are elsewhere, with the session each is about.
          errors: errors.map(({ id, error }) => ({
            id,
            code: isPublicError(error) ? error.code : "INTERNAL",
            message: (error as Error).message,
            exitCode: exitCodeFor(error),
          })),
        });
      } else if (ids.length === 0) {
        ctx.err.write("no ended sessions to remove\n");
      } else if (skipped > 0) {
        ctx.err.write(`left ${skipped} ended session(s) this token may only watch\n`);
      }
      return errors.length > 0 ? exitCodeFor(errors[0]!.error) : EXIT.OK;
    },
  );

/** A duration like 90s, 30m, 12h or 7d, in milliseconds. */
function durationOption(name: string, value: string): number {
  const m = /^(\d{1,9})(s|m|h|d)$/.exec(value);
  if (!m) throw new UsageError(`${name} takes a duration like 90s, 30m, 12h or 7d, not "${value}"`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/** Client commands; `main.ts` dispatches to them (and handles `serve` itself). */
export const COMMANDS: Record<string, Command> = {
  run,
  attach: attachCommand,
  ls,
  logs,
  send,
  signal,
  kill,
  shutdown,
  rm,
  // Loaded on demand (the agent commands with the WebSocket client).
  prompt: async (argv) => (await import("./agent-commands.js")).prompt(argv),
  abort: async (argv) => (await import("./agent-commands.js")).abort(argv),
  permission: async (argv) => (await import("./agent-commands.js")).permission(argv),
  mode: async (argv) => (await import("./agent-commands.js")).mode(argv),
  config: async (argv) => (await import("./agent-commands.js")).config(argv),
  elicit: async (argv) => (await import("./agent-commands.js")).elicit(argv),
  resume: async (argv) => (await import("./agent-commands.js")).resume(argv),
  diff: async (argv) => (await import("./diff-command.js")).diff(argv),
  grep: async (argv) => (await import("./grep-command.js")).grep(argv),
  put: async (argv) => (await import("./file-commands.js")).put(argv),
  get: async (argv) => (await import("./file-commands.js")).get(argv),
  plugins: async (argv) => (await import("./plugin-commands.js")).plugins(argv),
  pair: async (argv) => (await import("./device-commands.js")).pair(argv),
  devices: async (argv) => (await import("./device-commands.js")).devices(argv),
  share: async (argv) => (await import("./share-commands.js")).share(argv),
  // Loaded on demand, with the MCP SDK behind it.
  mcp: async (argv) => (await import("./mcp.js")).mcp(argv),
};

/** Whether the gateway URL points at this machine (then `run` sends the current directory). */
export function isLocal(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}
