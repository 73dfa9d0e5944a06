import { AnsiStripper } from "../../core/ansi-strip.js";
import { SwitchboardError } from "../../protocol/index.js";
import { isPublicError } from "../../protocol/errors.js";
import type { Session } from "../../sessions/session.js";
import { currentCopy, sessionFor } from "../identity/access.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { SECURITY_HEADERS, queryParam } from "../http/http.js";
import { EXPORT_READ_BYTES, pacedExport } from "../http/paced-export.js";
import type { ExportSlice, ExportSource } from "../http/paced-export.js";
import type { Router } from "../http/router.js";

/** Events one read of a recording takes at most (output and resizes). */
export const CAST_READ_EVENTS = 1000;

const CAST_EVENTS: ReadonlySet<string> = new Set(["output", "resize"]);
const TRANSCRIPT_FORMATS = ["raw", "text"] as const;
type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

/**
 * Whole-session exports (docs/protocol.md, "Recordings and transcripts"): `GET .../cast`, an
 * asciicast v2 recording of a PTY session, and `GET .../transcript`, all of a session's output
 * as raw bytes or as text without escape sequences. Both are streamed up to the log's head at
 * the time of the request, with the auth and visibility of `GET .../output`, paced and charged
 * to the caller's token as catch-ups are (src/server/http/paced-export.ts).
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
    await currentCopy(core.sessions, session);
    await streamAnswer(core, ctx, {
      type: "application/x-asciicast",
      file: `${session.id}.cast`,
      source: () => new CastExport(session),
    });
  });

  router.add("GET", "/v1/sessions/:id/transcript", async (ctx) => {
    const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
    const format = (queryParam(ctx.url, "format") ?? "raw") as TranscriptFormat;
    if (!TRANSCRIPT_FORMATS.includes(format)) throw new SwitchboardError("BAD_REQUEST", "format must be raw or text");
    await currentCopy(core.sessions, session);
    await streamAnswer(core, ctx, {
      type: format === "raw" ? "application/octet-stream" : "text/plain; charset=utf-8",
      file: `${session.id}${format === "raw" ? ".out" : ".txt"}`,
      source: () => new TranscriptExport(session, format),
    });
  });
}

/** Sends the headers, then the body `source` produces, paced as a catch-up of the caller's token; a failure after the headers cuts the response. */
async function streamAnswer(
  core: GatewayCore,
  ctx: RequestContext,
  answer: { type: string; file: string; source: () => ExportSource },
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
  const { share, release } = core.catchUp.hold(ctx.identity.principal);
  try {
    await pacedExport(res, answer.source(), { scheduler: core.catchUp.scheduler, share });
    res.end();
  } catch (error) {
    // The status is sent: the client sees a body cut short, the log says why.
    core.logger.error({ err: error, path: ctx.url.pathname }, "an export failed; the response was cut");
    res.destroy();
  } finally {
    release();
  }
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
 * Each slice is one read of the log, up to its head at the time of the request.
 */
class CastExport implements ExportSource {
  private readonly end: number;
  private readonly decoder = new TextDecoder("utf-8");
  private since: number;
  private start: number | undefined;
  private finished = false;

  constructor(private readonly session: Session) {
    this.end = session.log.head;
    this.since = session.log.first - 1;
  }

  next(): ExportSlice | null {
    const { session } = this;
    if (this.finished) return null;
    if (this.since >= this.end) {
      this.finished = true;
      // An empty recording is its header alone.
      if (this.start !== undefined) return null;
      return { chunk: castHeader(session, session.record.cols ?? 80, session.record.rows ?? 24), readBytes: 0 };
    }
    const page = readFrom(session, this.since, {
      limit: CAST_READ_EVENTS,
      maxBytes: EXPORT_READ_BYTES,
      types: CAST_EVENTS,
    });
    let lines = "";
    let readBytes = 0;
    for (const entry of page.entries) {
      if (entry.seq > this.end) break;
      readBytes += entry.size;
      const event = JSON.parse(entry.json) as CastEvent;
      if (this.start === undefined) {
        this.start = event.ts;
        const first = event.type === "resize" ? event : { cols: session.record.cols, rows: session.record.rows };
        lines += castHeader(session, first.cols ?? 80, first.rows ?? 24, this.start);
        if (event.type === "resize") continue;
      }
      const time = Math.max(0, Math.round(event.ts - this.start) / 1000);
      if (event.type === "resize") {
        lines += `${JSON.stringify([time, "r", `${event.cols}x${event.rows}`])}\n`;
        continue;
      }
      // Bytes, not text: a character split between two events is whole in the one it ends in.
      const bytes = event.enc === "base64" ? Buffer.from(event.data ?? "", "base64") : Buffer.from(event.data ?? "");
      const text = this.decoder.decode(bytes, { stream: true });
      if (text !== "") lines += `${JSON.stringify([time, "o", text])}\n`;
    }
    if (page.next <= this.since) this.since = this.end;
    else this.since = page.next;
    return { chunk: lines, readBytes };
  }
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
    if (!isPublicError(error) || error.code !== "HISTORY_TRIMMED") throw error;
    return session.log.read(session.log.first - 1, options);
  }
}

/** All output from the first byte retention kept to the output's end at the time of the request, a read of the log per slice. */
class TranscriptExport implements ExportSource {
  private readonly end: number;
  private readonly decoder: TextDecoder | undefined;
  private readonly stripper = new AnsiStripper();
  private offset = 0;
  private finished = false;

  constructor(
    private readonly session: Session,
    format: TranscriptFormat,
  ) {
    this.end = session.log.outputBytes;
    this.decoder = format === "text" ? new TextDecoder("utf-8") : undefined;
  }

  next(): ExportSlice | null {
    if (this.finished) return null;
    const { decoder, stripper } = this;
    let slices;
    try {
      slices =
        this.offset < this.end
          ? this.session.log.readOutput(this.offset, Math.min(EXPORT_READ_BYTES, this.end - this.offset))
          : [];
    } catch (error) {
      const first = isPublicError(error) ? error.details?.["first"] : undefined;
      if ((error as SwitchboardError).code !== "HISTORY_TRIMMED" || typeof first !== "number" || first <= this.offset)
        throw error;
      this.offset = first;
      return { chunk: "", readBytes: 0 };
    }
    if (slices.length === 0) {
      this.finished = true;
      // Output that ends inside a character: U+FFFD for it, as for any byte that is not UTF-8.
      return { chunk: decoder ? stripper.push(decoder.decode()) : "", readBytes: 0 };
    }
    let bytes = Buffer.concat(slices.map((s) => s.bytes));
    if (bytes.length > this.end - this.offset) bytes = bytes.subarray(0, this.end - this.offset);
    this.offset += bytes.length;
    return { chunk: decoder ? stripper.push(decoder.decode(bytes, { stream: true })) : bytes, readBytes: bytes.length };
  }
}
