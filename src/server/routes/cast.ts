import type { ServerResponse } from "node:http";
import { AnsiStripper } from "../../core/ansi-strip.js";
import { SwitchboardError } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import { currentCopy, sessionFor } from "../access.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { SECURITY_HEADERS, queryParam } from "../http.js";
import type { Router } from "../router.js";

/**
 * What one read of the log takes while a recording or transcript is streamed: the response
 * waits for the socket to drain between reads, so a long log is never held in memory and no
 * read blocks the event loop for long.
 */
export const EXPORT_READ_BYTES = 1024 * 1024;
/** Events one read of a recording takes at most (output and resizes). */
export const CAST_READ_EVENTS = 1000;

const CAST_EVENTS: ReadonlySet<string> = new Set(["output", "resize"]);
const TRANSCRIPT_FORMATS = ["raw", "text"] as const;
type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

/**
 * Whole-session exports (docs/protocol.md, "Recordings and transcripts"): `GET .../cast`, an
 * asciicast v2 recording of a PTY session, and `GET .../transcript`, all of a session's output
 * as raw bytes or as text without escape sequences. Both are streamed up to the log's head at
 * the time of the request, with the auth and visibility of `GET .../output`.
 */
export function castRoutes(router: Router, core: GatewayCore): void {
  router.add("GET", "/v1/sessions/:id/cast", async (ctx) => {
    const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
    if (!session.record.pty) {
      throw new SwitchboardError(
        "WRONG_SESSION_KIND",
        `session ${session.id} has no terminal to record (${session.record.kind}${session.record.kind === "terminal" ? " without a PTY" : ""}); read its output with GET /v1/sessions/${session.id}/transcript`,
      );
    }
    await currentCopy(session);
    await streamAnswer(core, ctx, {
      type: "application/x-asciicast",
      file: `${session.id}.cast`,
      body: (res) => writeCast(session, res),
    });
  });

  router.add("GET", "/v1/sessions/:id/transcript", async (ctx) => {
    const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
    const format = (queryParam(ctx.url, "format") ?? "raw") as TranscriptFormat;
    if (!TRANSCRIPT_FORMATS.includes(format)) throw new SwitchboardError("BAD_REQUEST", "format must be raw or text");
    await currentCopy(session);
    await streamAnswer(core, ctx, {
      type: format === "raw" ? "application/octet-stream" : "text/plain; charset=utf-8",
      file: `${session.id}${format === "raw" ? ".out" : ".txt"}`,
      body: (res) => writeTranscript(session, format, res),
    });
  });
}

/** Sends the headers, then the body as `body` writes it; a failure after the headers cuts the response. */
async function streamAnswer(
  core: GatewayCore,
  ctx: RequestContext,
  answer: { type: string; file: string; body: (res: ServerResponse) => Promise<void> },
): Promise<void> {
  const { res } = ctx;
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    "Content-Type": answer.type,
    "Content-Disposition": `attachment; filename="${answer.file}"`,
    "Cache-Control": "no-store",
  });
  if (ctx.req.method === "HEAD") {
    res.end();
    return;
  }
  try {
    await answer.body(res);
    res.end();
  } catch (error) {
    // The status is sent: the client sees a body cut short, the log says why.
    core.logger.error({ err: error, path: ctx.url.pathname }, "an export failed; the response was cut");
    res.destroy();
  }
}

/** Writes `text`; resolves once the socket takes more (false: the client is gone). */
function send(res: ServerResponse, text: string | Uint8Array): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if (res.write(text)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (open: boolean) => {
      res.off("drain", drained);
      res.off("close", closed);
      resolve(open);
    };
    const drained = () => done(true);
    const closed = () => done(false);
    res.on("drain", drained);
    res.on("close", closed);
  });
}

interface CastEvent {
  type: "output" | "resize";
  ts: number;
  data?: string;
  enc?: "base64";
  cols?: number;
  rows?: number;
}

/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a header line, then
 * `[time, "o", text]` per output event and `[time, "r", "COLSxROWS"]` per resize, times in
 * seconds from the first event. The header's size is the session's first resize (a PTY
 * session's log starts with its size); when retention dropped it, the session's size now.
 */
async function writeCast(session: Session, res: ServerResponse): Promise<void> {
  const end = session.log.head;
  const decoder = new TextDecoder("utf-8");
  let since = session.log.first - 1;
  let start: number | undefined;
  while (since < end) {
    const page = readFrom(session, since, { limit: CAST_READ_EVENTS, maxBytes: EXPORT_READ_BYTES, types: CAST_EVENTS });
    let lines = "";
    for (const entry of page.entries) {
      if (entry.seq > end) break;
      const event = JSON.parse(entry.json) as CastEvent;
      if (start === undefined) {
        start = event.ts;
        const first = event.type === "resize" ? event : { cols: session.record.cols, rows: session.record.rows };
        lines += castHeader(session, first.cols ?? 80, first.rows ?? 24, start);
        if (event.type === "resize") continue;
      }
      const time = Math.max(0, Math.round(event.ts - start) / 1000);
      if (event.type === "resize") {
        lines += `${JSON.stringify([time, "r", `${event.cols}x${event.rows}`])}\n`;
        continue;
      }
      // Bytes, not text: a character split between two events is whole in the one it ends in.
      const bytes = event.enc === "base64" ? Buffer.from(event.data ?? "", "base64") : Buffer.from(event.data ?? "");
      const text = decoder.decode(bytes, { stream: true });
      if (text !== "") lines += `${JSON.stringify([time, "o", text])}\n`;
    }
    if (page.next <= since) break;
    since = page.next;
    if (lines !== "" && !(await send(res, lines))) return;
  }
  if (start === undefined) await send(res, castHeader(session, session.record.cols ?? 80, session.record.rows ?? 24));
}

function castHeader(session: Session, cols: number, rows: number, start = session.record.createdAt): string {
  const header = {
    version: 2,
    width: cols,
    height: rows,
    timestamp: Math.floor(start / 1000),
    env: { TERM: "xterm-256color" },
    ...(session.record.name !== null ? { title: session.record.name } : {}),
  };
  return `${JSON.stringify(header)}\n`;
}

/** A page of the log after `since`; when retention dropped those events meanwhile, from the first kept. */
function readFrom(session: Session, since: number, options: Parameters<Session["log"]["read"]>[1]) {
  try {
    return session.log.read(since, options);
  } catch (error) {
    if (!(error instanceof SwitchboardError) || error.code !== "HISTORY_TRIMMED") throw error;
    return session.log.read(session.log.first - 1, options);
  }
}

/** All output from the first byte retention kept to the output's end at the time of the request. */
async function writeTranscript(session: Session, format: TranscriptFormat, res: ServerResponse): Promise<void> {
  const end = session.log.outputBytes;
  const decoder = format === "text" ? new TextDecoder("utf-8") : undefined;
  const stripper = new AnsiStripper();
  let offset = 0;
  while (offset < end) {
    let slices;
    try {
      slices = session.log.readOutput(offset, Math.min(EXPORT_READ_BYTES, end - offset));
    } catch (error) {
      const first = error instanceof SwitchboardError ? error.details?.["first"] : undefined;
      if ((error as SwitchboardError).code !== "HISTORY_TRIMMED" || typeof first !== "number" || first <= offset)
        throw error;
      offset = first;
      continue;
    }
    if (slices.length === 0) break;
    let bytes = Buffer.concat(slices.map((s) => s.bytes));
    if (bytes.length > end - offset) bytes = bytes.subarray(0, end - offset);
    offset += bytes.length;
    const chunk = decoder ? stripper.push(decoder.decode(bytes, { stream: true })) : bytes;
    if (chunk.length > 0 && !(await send(res, chunk))) return;
  }
  // Output that ends inside a character: U+FFFD for it, as for any byte that is not UTF-8.
  const rest = decoder ? stripper.push(decoder.decode()) : "";
  if (rest !== "") await send(res, rest);
}
