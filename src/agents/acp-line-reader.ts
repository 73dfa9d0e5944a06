import type { AnyMessage } from "@agentclientprotocol/sdk";
import { MessageTooLargeError } from "@agentclientprotocol/sdk";

/**
 * Reads an agent's stdout (newline-delimited JSON-RPC, as the SDK's `ndJsonStream` does) and
 * knows, for each message, the stdout offset after its line: what an agent under a holder keeps
 * as the point its output is applied to (held-turn.ts). `base()` is the offset of the first byte
 * read, asked when it comes. Lines that are not a JSON object are skipped (AcpStdoutNoise says
 * so); a line longer than `maxMessageBytes` fails the stream with the SDK's MessageTooLargeError.
 */
export class AcpLineReader {
  private readonly ends = new WeakMap<object, number>();
  private readonly maxMessageBytes: number;
  private readonly base: () => number;
  private offset: number | undefined;
  private line: Buffer[] = [];
  private lineBytes = 0;

  constructor(options: { maxMessageBytes: number; base: () => number }) {
    this.maxMessageBytes = options.maxMessageBytes;
    this.base = options.base;
  }

  /** The stdout offset after `message`'s line (undefined for a message this reader did not read). */
  endOf(message: AnyMessage): number | undefined {
    return this.ends.get(message);
  }

  stream(): TransformStream<Uint8Array, AnyMessage> {
    return new TransformStream<Uint8Array, AnyMessage>({
      transform: (chunk, controller) => {
        const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        let at = (this.offset ??= this.base());
        let from = 0;
        for (let nl = bytes.indexOf(0x0a); nl !== -1; nl = bytes.indexOf(0x0a, from)) {
          this.keep(bytes.subarray(from, nl));
          at += nl + 1 - from;
          from = nl + 1;
          const message = this.parse();
          if (message !== undefined) {
            this.ends.set(message, at);
            controller.enqueue(message);
          }
        }
        this.keep(bytes.subarray(from));
        this.offset = at + (bytes.length - from);
        if (this.lineBytes > this.maxMessageBytes) controller.error(new MessageTooLargeError(this.maxMessageBytes));
      },
    });
  }

  private keep(piece: Buffer): void {
    if (piece.length === 0) return;
    // Copied: the chunk's buffer may be reused once this transform returns.
    this.line.push(Buffer.from(piece));
    this.lineBytes += piece.length;
  }

  private parse(): AnyMessage | undefined {
    const text = Buffer.concat(this.line).toString("utf8").trim();
    this.line = [];
    this.lineBytes = 0;
    if (!text.startsWith("{")) return undefined;
    try {
      const value: unknown = JSON.parse(text);
      return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as AnyMessage) : undefined;
    } catch {
      // Not JSON: a line the agent printed by mistake (AcpStdoutNoise warns of those starting otherwise).
      return undefined;
    }
  }
}
