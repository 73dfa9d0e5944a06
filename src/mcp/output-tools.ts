import { z } from "zod";
import type { SessionInfo } from "../client/node.js";
import { describeState } from "./format.js";
import { MAX_ESCAPE_BYTES, continuationBytes, decodeMarked, decodePage, escapeEnd, plainText } from "./output-text.js";
import { REPLAY_GRACE_MS, waitForOutput } from "./output-wait.js";
import { PatternTooSlow } from "./pattern-match.js";
import type { WaitResult } from "./output-wait.js";
import { OutputPage, OutputWait } from "./results.js";
import { SessionId } from "./session-tools.js";
import { ToolError, defineTool } from "./tool.js";
import type { GatewayAccess, SentInput } from "./gateway.js";
import type { Tool } from "./tool.js";

/**
 * Output bytes a call returns unless it asks for fewer or more: a page shows at most this many
 * characters, under 25,000 tokens (Claude Code's default limit for a tool result) even for
 * output of a token a character (docs/mcp.md "Page sizes"; 64 KiB pages were 65,696 characters)…
 */
export const DEFAULT_OUTPUT_BYTES = 16 * 1024;
/** …and at most, whatever it asks: a page must fit in a model's context. */
export const MAX_OUTPUT_BYTES = 256 * 1024;
/** The smallest page: it holds whole characters (4 bytes at most) and most escape sequences. */
export const MIN_OUTPUT_BYTES = 64;
/** How long wait_for_output waits unless told. */
export const DEFAULT_WAIT_MS = 30_000;
/** The longest wait_for_output may wait (MCP clients time calls out too; see docs/mcp.md). */
export const MAX_WAIT_MS = 10 * 60_000;
/** Longest pattern accepted. */
const MAX_PATTERN_CHARS = 1000;

const MaxBytes = z
  .number()
  .int()
  .min(MIN_OUTPUT_BYTES)
  .max(MAX_OUTPUT_BYTES)
  .default(DEFAULT_OUTPUT_BYTES)
  .describe(
    `At most this many bytes of output (default ${DEFAULT_OUTPUT_BYTES}, from ${MIN_OUTPUT_BYTES} to ${MAX_OUTPUT_BYTES}).`,
  );
const Raw = z
  .boolean()
  .default(false)
  .describe(
    "Return the text as the process wrote it. Default false: terminal escape sequences (colours, cursor moves) and carriage-return overwrites are removed.",
  );

const readOutput = defineTool({
  name: "read_output",
  title: "Read a session's output",
  description:
    "Reads a terminal session's output (stdout and stderr as they interleaved, or the PTY screen stream) from byte offset since, one bounded page at a time. The answer is a status line, then the output as a text block of its own; the status says the session's state and gives next: pass it as since to read on (more: true says output is waiting beyond this page) or to wait_for_output to wait for what comes after. Bytes that are not UTF-8 show as \\xNN and the status says the output is binary. Works on running and ended sessions.",
  input: z.strictObject({
    id: SessionId,
    since: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe("The byte offset to read from: 0 for the start, or the next of the previous read."),
    max_bytes: MaxBytes,
    raw: Raw,
  }),
  output: OutputPage,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async (args, { gateway }) => {
    const session = await terminalSession(gateway, args.id);
    // More than the page: where an escape sequence cut at its end ends (see MAX_ESCAPE_BYTES).
    const chunk = await gateway.http.output(args.id, { since: args.since, max: args.max_bytes + MAX_ESCAPE_BYTES });
    // `since: 0` reads from the first byte retention kept.
    const from = chunk.next - chunk.bytes.length;
    const complete = chunk.next >= chunk.total && session.state !== "running";
    // Plain text leaves escape sequences out: a page may take a long one whole, so that the next does not start inside it.
    let decoded = decodePage(chunk.bytes, complete, { max: args.max_bytes, wholeEscapes: !args.raw });
    // Pages join to the same text as one read, also where a line is rewritten with carriage returns.
    const cut = args.raw ? undefined : rewrittenLineCut(chunk.bytes, decoded.used);
    if (cut !== undefined) {
      const shown = decodePage(chunk.bytes, complete, { max: cut.shown, wholeEscapes: true });
      if (shown.used === cut.shown) decoded = { ...shown, used: cut.end };
    }
    const output = args.raw ? decoded.text : plainText(decoded.text);
    const next = from + decoded.used;
    const more = next < chunk.total;
    const where = more
      ? `more output waits: read_output since=${next}`
      : session.state === "running"
        ? `that is all so far: wait_for_output since=${next} waits for more`
        : "the end";
    const header = `[${session.id} ${describeState(session)} | bytes ${from}-${next} of ${chunk.total}${from > args.since ? ` (bytes before ${from} were dropped by retention)` : ""}${binaryNote(decoded.invalid)} | ${where}]`;
    return {
      text: header,
      body: output,
      data: {
        id: session.id,
        state: session.state,
        exit_code: session.exitCode,
        signal: session.signal,
        from,
        next,
        total: chunk.total,
        more,
        ...binaryFields(decoded.invalid),
      },
    };
  },
});

const waitForOutputTool = defineTool({
  name: "wait_for_output",
  title: "Wait for a session's output",
  description:
    'Waits, without polling, until a terminal session prints output after byte offset since that matches pattern (a JavaScript regular expression, multiline: ^ and $ match at line ends), or any new output when there is no pattern, or until the session exits or timeout_ms passes. Returns why it returned (matched / output / exited / timeout / disconnected: the gateway connection was lost), the output that arrived (the latest max_bytes of it; with a match, up to the end of the line the match ends on: what came after it comes from next) and next to pass as since next time; with a match, match_line_offset is where its line starts. timeout_ms: 0 looks at the output that is there now. Leave since out to wait only for output from now on; pass the next of your last read (or the output_offset of send_input) so that nothing printed in between is missed. Use it for "wait until the server says listening", "wait for the tests to finish", "wait for the prompt". A PTY echoes what send_input typed, so a pattern can match the command line itself: after_input: true waits from your last send_input and matches only what comes after the echo of its line.',
  input: z.strictObject({
    id: SessionId,
    pattern: z
      .string()
      .min(1)
      .max(MAX_PATTERN_CHARS)
      .optional()
      .describe(
        'A regular expression, e.g. "listening on|EADDRINUSE" or "^All \\d+ tests passed". Default: any new output.',
      ),
    since: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("The output bytes you already have (a next offset). Default: the end of the output now."),
    after_input: z
      .boolean()
      .default(false)
      .describe(
        "Wait for the response to your last send_input to this session: from the output offset it returned, and in a PTY only after the echo of the typed line (so that a pattern does not match the command itself). Not with since.",
      ),
    timeout_ms: z
      .number()
      .int()
      .min(0)
      .max(MAX_WAIT_MS)
      .default(DEFAULT_WAIT_MS)
      .describe(`How long to wait (default ${DEFAULT_WAIT_MS}, at most ${MAX_WAIT_MS}).`),
    max_bytes: MaxBytes,
    raw: Raw,
  }),
  output: OutputWait,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async (args, { gateway, signal, progress }) => {
    let pattern: RegExp | undefined;
    try {
      pattern = args.pattern !== undefined ? new RegExp(args.pattern, "m") : undefined;
    } catch (error) {
      throw new ToolError("VALIDATION_FAILED", `pattern: ${(error as Error).message}`);
    }
    const input = args.after_input ? sentInput(gateway, args.id, args.since) : undefined;
    const session = await terminalSession(gateway, args.id);
    let result: WaitResult;
    try {
      result = await waitForOutput({
        target: gateway.target,
        id: args.id,
        // No since: from the end of the output as it is now (also if the wait ends before it connects).
        since: input?.offset ?? args.since ?? session.outputBytes,
        // A pipe does not echo: its output after the input is all response.
        ...(input !== undefined && session.pty ? { afterEcho: input.echo } : {}),
        pattern,
        timeoutMs: args.timeout_ms,
        maxBytes: args.max_bytes + MAX_ESCAPE_BYTES,
        raw: args.raw,
        signal,
        ...(progress !== undefined ? { progress } : {}),
      });
    } catch (error) {
      if (error instanceof PatternTooSlow) throw new ToolError("VALIDATION_FAILED", `pattern: ${error.message}`);
      throw error;
    }
    // The wait kept up to MAX_ESCAPE_BYTES more than max_bytes: what comes before the latest
    // max_bytes tells whether they start inside an escape sequence (skipped, or its rest would
    // show as text: "[33m") or in the middle of a character (its continuation bytes skipped).
    let cut = Math.max(0, result.bytes.length - args.max_bytes);
    if (result.from + cut > result.start) {
      cut = escapeEnd(result.bytes, cut);
      cut += continuationBytes(result.bytes.subarray(cut));
    }
    let decoded = decodePage(result.bytes.subarray(cut), result.reason === "exited");
    if (decoded.text.length > args.max_bytes) {
      // Bytes that are not UTF-8 show as \xNN, four characters each: the latest that fit are shown.
      const latest = decodeMarked(result.bytes.subarray(cut, cut + decoded.used), {
        maxChars: args.max_bytes,
        fromEnd: true,
      });
      cut += decoded.used - latest.used;
      decoded = latest;
    }
    const from = result.from + cut;
    const output = args.raw ? decoded.text : plainText(decoded.text);
    const next = from + decoded.used;
    const now = await stateAfter(gateway, session, result);
    const state = now !== undefined ? describeState(now) : "state unknown (the gateway cannot be reached)";
    const skipped =
      from > result.start ? ` (bytes ${result.start}-${from} are not shown: read_output since=${result.start})` : "";
    const dropped =
      result.dropped > 0 ? ` (${result.dropped} bytes were dropped by retention before they were read)` : "";
    const echo = result.echoSeen === false ? ` (the echo of the input's line was not seen: ${NO_ECHO})` : "";
    const header = `[${why(result, { pattern: args.pattern, timeoutMs: args.timeout_ms, from, next })}${echo} | ${session.id} ${state} | bytes ${from}-${next}${skipped}${dropped}${binaryNote(decoded.invalid)} | next: since=${next}]`;
    return {
      text: header,
      body: output,
      data: {
        id: session.id,
        reason: result.reason,
        ...(result.match !== undefined
          ? { match: result.match.match, match_line_offset: result.match.lineOffset }
          : {}),
        state: now?.state ?? ("unknown" as const),
        exit_code: now?.exitCode ?? null,
        signal: now?.signal ?? null,
        start: result.start,
        ...(result.echoSeen !== undefined ? { echo_seen: result.echoSeen } : {}),
        ...(result.dropped > 0 ? { dropped_bytes: result.dropped } : {}),
        from,
        next,
        ...binaryFields(decoded.invalid),
      },
    };
  },
});

/**
 * A line rewritten with CRs (a progress bar) shows its last state, so a page must not cut it: the
 * page ends before it, or, when that leaves nothing, after its last CR, showing none of it if what
 * follows overwrites it. Returns the page's `end` and where what it shows ends (`shown`); undefined
 * when no such line is cut or it cannot be avoided (a CR-less part longer than a page).
 */
function rewrittenLineCut(bytes: Uint8Array, used: number): { end: number; shown: number } | undefined {
  if (used === 0 || used >= bytes.length || bytes[used - 1] === 0x0a) return undefined;
  const lineBreak = bytes.indexOf(0x0a, used);
  const lineEnd = lineBreak < 0 ? bytes.length : lineBreak;
  const start = bytes.lastIndexOf(0x0a, used - 1) + 1;
  if (start > 0) {
    // A CR right before the line break is CRLF, not a rewrite.
    let end = lineEnd;
    while (lineBreak >= 0 && end > start && bytes[end - 1] === 0x0d) end--;
    return bytes.subarray(start, end).includes(0x0d) ? { end: start, shown: start } : undefined;
  }
  const lastCr = bytes.lastIndexOf(0x0d, used - 1);
  if (lastCr < 0) return undefined;
  const after = plainText(decodePage(bytes.subarray(lastCr + 1, lineEnd), true).text);
  return after !== "" ? { end: lastCr + 1, shown: 0 } : undefined;
}

/** How long the state of a session is read at the end of a wait, at most (the gateway may be gone). */
const STATE_READ_MS = 3_000;

/**
 * The session as it is at the end of a wait (it may have exited after a match, or been lost
 * with the gateway), not as it was before: read again, with the exit the wait saw. Undefined
 * when the connection was lost and the gateway does not answer.
 */
async function stateAfter(
  gateway: GatewayAccess,
  before: SessionInfo,
  result: WaitResult,
): Promise<Pick<SessionInfo, "state" | "pid" | "exitCode" | "signal"> | undefined> {
  let now: SessionInfo | undefined = before;
  if (result.reason !== "cancelled") {
    now = await gateway.http.getSession(before.id, { signal: AbortSignal.timeout(STATE_READ_MS) }).catch(
      // Unreachable, or removed meanwhile: said below by what the wait saw.
      () => (result.reason === "disconnected" ? undefined : before),
    );
  }
  if (result.exit === undefined) return now;
  return { ...(now ?? before), state: result.exit.state ?? "exited", ...result.exit };
}

function why(
  result: WaitResult,
  at: { pattern: string | undefined; timeoutMs: number; from: number; next: number },
): string {
  switch (result.reason) {
    case "matched": {
      const match = result.match!;
      // The match came early in a burst and only its latest bytes are shown: say where to read it.
      const where =
        match.lineOffset < at.from
          ? ` on the line from byte ${match.lineOffset} (not shown below: read_output since=${match.lineOffset})`
          : "";
      return `matched ${JSON.stringify(match.match)}${where}`;
    }
    case "output":
      return "new output";
    case "exited":
      return at.pattern !== undefined ? "the session exited without a match" : "the session exited";
    case "timeout":
      if (!result.replayed) {
        return `timed out after ${at.timeoutMs} ms (and ${REPLAY_GRACE_MS} ms more) before the gateway had sent the output that was there: read_output since=${at.next} reads it`;
      }
      return `timed out after ${at.timeoutMs} ms without ${at.pattern !== undefined ? "a match" : "new output"}`;
    case "cancelled":
      return "cancelled";
    case "disconnected":
      return `the connection to the gateway was lost during the wait (it stopped or restarted): once it is up again, wait_for_output with since=${at.next} goes on, and list_sessions shows whether the session survived`;
  }
}

/** What a program that does not echo its input (a password prompt, `stty -echo`) needs instead of after_input. */
const NO_ECHO = "a program with echo off shows none; wait with since: output_offset instead";

/**
 * The last send_input to `id` through this server, for after_input: refused with `since`
 * (after_input says where to start) or when there was none.
 */
function sentInput(gateway: GatewayAccess, id: string, since: number | undefined): SentInput {
  if (since !== undefined) {
    throw new ToolError(
      "VALIDATION_FAILED",
      "after_input: give after_input or since, not both (after_input starts at the output offset of your last send_input)",
    );
  }
  const input = gateway.lastInput(id);
  if (input === undefined) {
    throw new ToolError(
      "VALIDATION_FAILED",
      `after_input: no send_input to ${id} through this MCP server yet (or not one that pressed Enter); send_input first, or wait with since`,
    );
  }
  return input;
}

/** The header's word on bytes that are not UTF-8. */
function binaryNote(invalid: number): string {
  return invalid > 0 ? ` | binary: ${invalid} bytes are not UTF-8, shown as \\xNN` : "";
}

function binaryFields(invalid: number): { binary?: true; invalid_bytes?: number } {
  return invalid > 0 ? { binary: true, invalid_bytes: invalid } : {};
}

/** The session, refused when it has no output stream to read (agent sessions answer through prompt_agent). */
async function terminalSession(gateway: GatewayAccess, id: string): Promise<SessionInfo> {
  const session = await gateway.http.getSession(id);
  if (session.kind === "agent") {
    throw new ToolError(
      "WRONG_SESSION_KIND",
      `${id} is an agent session: it has no terminal output; prompt_agent and wait_for_run return its answers`,
    );
  }
  return session;
}

export const OUTPUT_TOOLS: readonly Tool[] = [readOutput, waitForOutputTool];
