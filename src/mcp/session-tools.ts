import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { LIMITS, SESSION_STATES, SIGNALS, SessionName } from "../protocol/index.js";
import { isPublicError } from "../protocol/errors.js";
import type { SessionState } from "../protocol/index.js";
import { describeState, sessionLine, summarize } from "./format.js";
import type { GatewayAccess } from "./gateway.js";
import { InputSent, OneSession, Removed, SessionList, SignalSent } from "./results.js";
import { ToolError, defineTool } from "./tool.js";
import type { Tool } from "./tool.js";

/** A session id argument. */
export const SessionId = z.string().min(1).max(200).describe("The session id (from list_sessions or start_session).");

/** A working directory argument: relative ones are taken from the MCP server's directory when the gateway is local. */
export const Cwd = z
  .string()
  .min(1)
  .max(4096)
  .optional()
  .describe(
    "Absolute working directory on the gateway's machine. Default: the MCP server's directory when the gateway runs on this machine.",
  );

/** The directory a session should start in: `cwd` (made absolute when the gateway is local), else the default. */
export function sessionCwd(gateway: GatewayAccess, cwd: string | undefined): { cwd?: string } {
  if (cwd === undefined) return gateway.defaultCwd !== undefined ? { cwd: gateway.defaultCwd } : {};
  if (!isAbsolute(cwd) && gateway.defaultCwd !== undefined) return { cwd: resolve(gateway.defaultCwd, cwd) };
  return { cwd };
}

/** Sessions list_sessions lists unless told… */
export const DEFAULT_LIST_LIMIT = 50;
/** …and at most (ended sessions are kept until removed: a gateway may hold thousands). */
export const MAX_LIST_LIMIT = 500;

const StateName = z.enum(SESSION_STATES);

const listSessions = defineTool({
  name: "list_sessions",
  title: "List sessions",
  description: `Lists the Switchboard sessions this token may see: terminal sessions (processes in a pipe or a PTY), agent sessions and stream sessions, with id, name, kind, state (running / exited / lost), command, exit code or signal, and how many output bytes each has produced. At most limit (default ${DEFAULT_LIST_LIMIT}) are listed: the running ones first, then the newest; the text says how many more there are (offset lists the next ones). state filters, e.g. "running".`,
  input: z.strictObject({
    state: z
      .union([StateName, z.array(StateName).min(1)])
      .optional()
      .describe('Only sessions in this state or these states: "running", "exited", "lost". Default: all.'),
    limit: z
      .number()
      .int()
      .min(1)
      .max(MAX_LIST_LIMIT)
      .default(DEFAULT_LIST_LIMIT)
      .describe(`At most this many sessions (default ${DEFAULT_LIST_LIMIT}, at most ${MAX_LIST_LIMIT}).`),
    offset: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        "Skip this many (running first, then the newest): the offset the previous answer gave, for the next ones.",
      ),
  }),
  output: SessionList,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async (args, { gateway }) => {
    const states: readonly SessionState[] | undefined =
      args.state === undefined ? undefined : typeof args.state === "string" ? [args.state] : args.state;
    const all = await gateway.http.listSessions(states !== undefined ? { state: states } : {});
    // A gateway older than the filter answers every session.
    const matching = states !== undefined ? all.filter((s) => states.includes(s.state)) : all;
    // Running sessions are the ones an agent acts on; after them the newest of the ended ones.
    const byRelevance = [...matching].sort(
      (a, b) => Number(b.state === "running") - Number(a.state === "running") || b.createdAt - a.createdAt,
    );
    const listed = byRelevance.slice(args.offset, args.offset + args.limit).sort((a, b) => a.createdAt - b.createdAt);
    const total = matching.length;
    const after = args.offset + listed.length;
    const more = Math.max(0, total - after);
    const which = states !== undefined ? ` ${states.join(" or ")}` : "";
    let text: string;
    if (total === 0) {
      text =
        states !== undefined
          ? `No${which} sessions.`
          : "No sessions. start_session starts a process; create_agent_session starts an agent.";
    } else if (listed.length === total) {
      text = `${total}${which} session${total === 1 ? "" : "s"}:\n${listed.map(sessionLine).join("\n")}`;
    } else {
      const running = matching.filter((s) => s.state === "running").length;
      const head =
        listed.length === 0
          ? `${total}${which} sessions; none after offset ${args.offset}.`
          : `${total}${which} sessions (${running} running); listed: ${args.offset + 1}-${after} of them, the running first, then the newest (oldest first below):`;
      const stateArg = args.state !== undefined ? `, "state": ${JSON.stringify(args.state)}` : "";
      const tail =
        more > 0
          ? `\n${more} more (older): list_sessions {"offset": ${after}${stateArg}} lists the next ${Math.min(more, args.limit)}${states === undefined ? '; {"state": "running"} only the running ones' : ""}.`
          : "";
      text = `${head}${listed.length > 0 ? `\n${listed.map(sessionLine).join("\n")}` : ""}${tail}`;
    }
    return {
      text,
      data: {
        sessions: listed.map(summarize),
        total,
        offset: args.offset,
        ...(more > 0 ? { next_offset: after } : {}),
      },
    };
  },
});

const startSession = defineTool({
  name: "start_session",
  title: "Start a process",
  description:
    'Starts a command as a Switchboard terminal session that keeps running after this call (a dev server, a build, a test watcher, a REPL, a shell) and returns its id. Follow it with read_output or wait_for_output (since: 0), type into it with send_input, stop it with stop_session. The command is an argv array, not a shell line: use ["sh", "-c", "..."] for pipes and redirections. Set pty: true for interactive programs that need a terminal (shells, REPLs, TUIs); pipe mode (the default) keeps stdout and stderr apart and lets send_input end the input with eof.',
  input: z.strictObject({
    command: z
      .array(z.string().min(1))
      .min(1)
      .max(LIMITS.COMMAND_ARGS)
      .describe(
        'The program and its arguments, e.g. ["npm", "run", "dev"] or ["sh", "-c", "make 2>&1 | tee build.log"].',
      ),
    cwd: Cwd,
    pty: z.boolean().optional().describe("Run in a pseudo-terminal (default false: pipes)."),
    name: SessionName.optional().describe("A name to recognise the session by."),
    env: z.record(z.string(), z.string()).optional().describe('Environment variables to set, e.g. {"PORT": "3000"}.'),
    cols: z.number().int().min(1).max(LIMITS.MAX_COLS).optional().describe("PTY width (default 80)."),
    rows: z.number().int().min(1).max(LIMITS.MAX_ROWS).optional().describe("PTY height (default 24)."),
  }),
  output: OneSession,
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  run: async (args, { gateway }) => {
    const session = await gateway.http.createSession({
      command: args.command,
      ...sessionCwd(gateway, args.cwd),
      ...(args.pty !== undefined ? { pty: args.pty } : {}),
      ...(args.name !== undefined ? { name: args.name } : {}),
      ...(args.env !== undefined ? { env: args.env } : {}),
      ...(args.cols !== undefined ? { cols: args.cols } : {}),
      ...(args.rows !== undefined ? { rows: args.rows } : {}),
    });
    const text = `Started ${sessionLine(session)}\nin ${session.cwd ?? "the gateway's directory"}. Read its output with read_output or wait_for_output {"id": "${session.id}", "since": 0}.`;
    return { text, data: { session: summarize(session) } };
  },
});

const sendInput = defineTool({
  name: "send_input",
  title: "Type into a session",
  description:
    'Types text into a running terminal session, followed by Enter unless enter is false (Enter is CR in a PTY, LF in a pipe). eof: true then ends the input: a pipe session\'s stdin is closed (so cat, sort or wc finish), a PTY gets Ctrl-D. Control keys can be sent as characters in PTY sessions ("\\u0003" is Ctrl-C; send_signal is the sure way to interrupt). Returns the output offset before the input: pass it as since to wait_for_output to see the response, or wait_for_output with after_input: true (which in a PTY also skips the echo of the typed line).',
  input: z.strictObject({
    id: SessionId,
    text: z.string().max(LIMITS.INPUT_BYTES).default("").describe("The text to type (may be empty with eof or enter)."),
    enter: z.boolean().default(true).describe("Press Enter after the text (default true)."),
    eof: z.boolean().default(false).describe("End the input after the text (default false)."),
  }),
  output: InputSent,
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  run: async (args, { gateway }) => {
    const session = await gateway.http.getSession(args.id);
    const data = args.text + (args.enter ? (session.pty ? "\r" : "\n") : "");
    if (data === "" && !args.eof) {
      throw new ToolError("VALIDATION_FAILED", "nothing to send: give text, enter: true or eof: true");
    }
    const result = await gateway.http.input(args.id, data, { eof: args.eof });
    const lines = args.text.split(/\r\n|\r|\n/);
    gateway.recordInput(
      args.id,
      args.enter ? { offset: session.outputBytes, echo: lines[lines.length - 1]! } : undefined,
    );
    const ended = args.eof ? (session.pty ? " and Ctrl-D" : " and closed its input") : "";
    return {
      text: `Sent ${result.bytes} bytes${ended} to ${args.id}. Its output was at byte ${session.outputBytes}: wait_for_output with since: ${session.outputBytes} shows the response.`,
      data: { id: args.id, bytes: result.bytes, eof: args.eof, output_offset: session.outputBytes },
    };
  },
});

const sendSignal = defineTool({
  name: "send_signal",
  title: "Signal a session",
  description: `Sends a signal to a running terminal session's process group (in a PTY: the terminal's foreground process group, as Ctrl-C does). One of ${SIGNALS.join(", ")} (the SIG prefix is optional). INT interrupts like Ctrl-C; TERM asks to stop; KILL forces.`,
  input: z.strictObject({
    id: SessionId,
    signal: z
      .string()
      .min(1)
      .max(16)
      .describe(`The signal: ${SIGNALS.join(", ")}.`),
  }),
  output: SignalSent,
  annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: true },
  run: async (args, { gateway }) => {
    const result = await gateway.http.signal(args.id, args.signal);
    return {
      text: `Sent SIG${result.signal} to ${args.id}. wait_for_output shows whether it ended (it returns when the session exits).`,
      data: { id: args.id, signal: result.signal },
    };
  },
});

const stopSession = defineTool({
  name: "stop_session",
  title: "Stop a session",
  description:
    "Terminates a session and waits for it to end: SIGTERM (a PTY is hung up first), then SIGKILL after a grace period. Its output and log stay readable (read_output); remove_session deletes them.",
  input: z.strictObject({ id: SessionId }),
  output: OneSession,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
  run: async (args, { gateway }) => {
    const session = await gateway.http.deleteSession(args.id);
    return {
      text: `Session ${session.id} ${describeState(session)}.`,
      data: { session: summarize(session) },
    };
  },
});

const removeSession = defineTool({
  name: "remove_session",
  title: "Remove a session",
  description:
    "Removes a session for good: its record, its output and its log (and the terminals an agent session ran). A running session is refused (SESSION_RUNNING) unless force: true, which terminates it first.",
  input: z.strictObject({
    id: SessionId,
    force: z.boolean().default(false).describe("Terminate a running session first (default false)."),
  }),
  output: Removed,
  annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: true },
  run: async (args, { gateway }) => {
    let removed: Awaited<ReturnType<typeof gateway.http.removeSession>>;
    try {
      removed = await gateway.http.removeSession(args.id, { force: args.force });
    } catch (error) {
      // The gateway's message names its HTTP and CLI ways ("DELETE without purge", "switchboard
      // rm -f"); an agent here has tools for it.
      if (!isPublicError(error) || error.code !== "SESSION_RUNNING") throw error;
      const what = error.message.split(": terminate it first")[0] ?? `session ${args.id} is running`;
      throw new ToolError(
        "SESSION_RUNNING",
        `${what}: stop_session stops it (its output stays readable), then remove_session removes it; or remove_session with force: true stops and removes it at once`,
      );
    }
    return {
      text: `Removed ${removed.map((s) => s.id).join(", ")}.`,
      data: { removed: removed.map((s) => s.id) },
    };
  },
});

export const SESSION_TOOLS: readonly Tool[] = [
  listSessions,
  startSession,
  sendInput,
  sendSignal,
  stopSession,
  removeSession,
];
