import type { AgentLogger } from "./logger.js";

/** Lines of an agent's stdout that are not ACP messages logged (and quoted) per process; later ones are only counted. */
export const MAX_NOISE_LINES_KEPT = 5;
/** Characters of such a line logged and quoted. */
export const NOISE_LINE_CHARS = 200;

const NEWLINE = 0x0a;
const OPEN_BRACE = 0x7b;
const isBlank = (byte: number): boolean => byte === 0x20 || byte === 0x09 || byte === 0x0d;

/**
 * Watches an ACP agent's stdout for lines that cannot be ACP messages (every message is one JSON
 * object on one line, so a line not starting with `{` is not one): a banner, a usage text, an
 * agent not started in its ACP mode. The SDK answers such a line with a parse error to the agent
 * and says nothing to us; an agent that prints only those then looked like one that hangs until
 * the start timeout. The first {@link MAX_NOISE_LINES_KEPT} are logged and kept for the error
 * message; the bytes pass through unchanged.
 */
export class AcpStdoutNoise {
  private readonly logger: AgentLogger;
  private readonly sessionId: string;
  private readonly kept: string[] = [];
  private count = 0;
  private state: "start" | "message" | "noise" = "start";
  private line: Buffer[] = [];
  private lineBytes = 0;

  constructor(options: { logger: AgentLogger; sessionId: string }) {
    this.logger = options.logger;
    this.sessionId = options.sessionId;
  }

  /** How many such lines the agent printed so far. */
  get lines(): number {
    return this.count;
  }

  /** "…printed N line(s) that are not ACP messages on stdout: "a", "b"", or undefined when it printed none. */
  describe(): string | undefined {
    if (this.count === 0) return undefined;
    const quoted = this.kept.map((l) => JSON.stringify(l)).join(", ");
    return `it printed ${this.count} line(s) on stdout that are not ACP messages (is it started in its ACP mode? ACP needs stdout for JSON-RPC alone): ${quoted}${this.count > this.kept.length ? ", …" : ""}`;
  }

  /** A pass-through stream that watches the bytes going by. */
  stream(): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream({
      transform: (chunk, controller) => {
        this.scan(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        controller.enqueue(chunk);
      },
      flush: () => this.endLine(),
    });
  }

  private scan(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "start") {
        const byte = chunk[i]!;
        if (byte === NEWLINE) {
          i++;
          continue;
        }
        if (isBlank(byte)) {
          i++;
          continue;
        }
        this.state = byte === OPEN_BRACE ? "message" : "noise";
      }
      const end = chunk.indexOf(NEWLINE, i);
      const stop = end === -1 ? chunk.length : end;
      if (this.state === "noise") this.keep(chunk.subarray(i, stop));
      if (end === -1) return;
      this.endLine();
      i = end + 1;
    }
  }

  /** Keeps the start of a noise line (a character may take 4 bytes). */
  private keep(bytes: Buffer): void {
    const room = NOISE_LINE_CHARS * 4 - this.lineBytes;
    if (room <= 0 || this.count >= MAX_NOISE_LINES_KEPT) return;
    const part = bytes.subarray(0, room);
    this.line.push(part);
    this.lineBytes += part.length;
  }

  private endLine(): void {
    if (this.state === "noise") {
      this.count++;
      if (this.count <= MAX_NOISE_LINES_KEPT) {
        const text = Buffer.concat(this.line).toString("utf8").trim();
        const line = text.length > NOISE_LINE_CHARS ? `${text.slice(0, NOISE_LINE_CHARS)}…` : text;
        this.kept.push(line);
        this.logger.warn(
          { sessionId: this.sessionId, line },
          "the ACP agent printed a line on stdout that is not an ACP message; ignored",
        );
      }
    }
    this.state = "start";
    this.line = [];
    this.lineBytes = 0;
  }
}
