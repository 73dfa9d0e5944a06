import type { Writable } from "node:stream";
import { prettyLogLine } from "./log-format.js";
import type { LogFormat } from "./log-format.js";

/** Bytes of log lines waiting for stderr's reader; past it new lines are dropped, and counted. */
export const LOG_QUEUE_MAX_BYTES = 1024 * 1024;
/** How long a stop waits for the log lines still waiting to be written, before it exits without them. */
export const LOG_FLUSH_TIMEOUT_MS = 1_000;

/**
 * Why each output failed (its error's code), from one listener per stream: every gateway started
 * in a process (the tests start hundreds) makes a destination on the same stderr, and a listener
 * each was never removed (Node warned past ten; test/system/log-destination.test.ts).
 */
const failures = new WeakMap<Writable, { code: string | undefined }>();

function failureOf(out: Writable): { code: string | undefined } {
  let failure = failures.get(out);
  if (failure === undefined) {
    const found: { code: string | undefined } = { code: undefined };
    out.on("error", (error: NodeJS.ErrnoException) => {
      found.code ??= error.code ?? error.message;
    });
    failures.set(out, (failure = found));
  }
  return failure;
}

/**
 * Where the gateway's log lines go (stderr), never blocking the event loop nor a stop: pino's own
 * destination retries a failed write to a pipe without end and flushes synchronously at exit.
 * A pipe nobody reads holds at most {@link LOG_QUEUE_MAX_BYTES} (later lines are dropped and
 * counted); a failed write (EPIPE) ends the logging; {@link flush} waits at most
 * {@link LOG_FLUSH_TIMEOUT_MS}. Evidence: test/cli/serve-output-gone.test.ts.
 */
export class LogDestination {
  private readonly out: Writable;
  /** Why the output failed (its code): nothing more is written. */
  private readonly failure: { code: string | undefined };
  private dropped = 0;
  /** Lines as a person reads them (src/system/log-format.ts), in colour on a terminal; else pino's JSON. */
  private readonly pretty: { colour: boolean } | undefined;

  constructor(out: Writable = process.stderr, options: { format?: LogFormat } = {}) {
    this.out = out;
    this.pretty =
      options.format === "pretty"
        ? { colour: (out as { isTTY?: boolean }).isTTY === true && !process.env["NO_COLOR"] }
        : undefined;
    this.failure = failureOf(out);
  }

  private get failed(): string | undefined {
    return this.failure.code;
  }

  /** Lines pino hands over (one JSON line each). */
  write(line: string): void {
    if (this.failed !== undefined || this.out.destroyed) return;
    if (this.out.writableLength + line.length > LOG_QUEUE_MAX_BYTES) {
      this.dropped += 1;
      return;
    }
    if (this.dropped > 0) {
      const note = {
        level: 40,
        time: Date.now(),
        service: "switchboard",
        dropped: this.dropped,
        msg: `${this.dropped} log lines were dropped: stderr was not read (LOG_QUEUE_MAX_BYTES)`,
      };
      this.dropped = 0;
      this.out.write(this.shown(`${JSON.stringify(note)}\n`));
    }
    this.out.write(this.shown(line));
  }

  private shown(line: string): string {
    return this.pretty ? prettyLogLine(line, this.pretty) : line;
  }

  /** Calls `done` once what is queued was written, the output failed, or {@link LOG_FLUSH_TIMEOUT_MS} passed. */
  flush(done: (error?: Error) => void): void {
    if (this.failed !== undefined || this.out.destroyed || this.out.writableLength === 0) {
      done();
      return;
    }
    const finish = () => {
      clearTimeout(timer);
      this.out.off("drain", finish);
      this.out.off("error", finish);
      this.out.off("close", finish);
      done();
    };
    const timer = setTimeout(finish, LOG_FLUSH_TIMEOUT_MS);
    this.out.once("drain", finish);
    this.out.once("error", finish);
    this.out.once("close", finish);
  }
}
