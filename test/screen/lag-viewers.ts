// The slow viewers and the flood of the lag=screen tests: test/screen/screen-lag.test.ts (what a
// screen shows, alone: it needs the screen thread) and screen-lag-bytes.test.ts (every byte, no
// screen thread needed).
import { writeFileSync } from "node:fs";
import WebSocket from "ws";
import { readBinaryOutput } from "../../src/protocol/index.js";
import type { Session } from "../../src/sessions/session.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import type { testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

export interface ScreenFrame {
  data: string;
  offset: number;
  skipped?: number;
}

export interface Watched {
  screens: ScreenFrame[];
  /** Output after the last screen (or from the start), bytes in order, checked contiguous. */
  output: Buffer;
  start: number;
  /** Output bytes received in all (every screen's skip aside). */
  received: number;
  /** The session's exit came. */
  exited?: boolean;
}

/**
 * Bytes a second a slow viewer reads once it resumes, as a busy browser tab does: it stays behind
 * while bytes come, so a screen that is late (a loaded machine) still finds it behind.
 */
const SLOW_READ_BYTES_PER_S = 4 * 1024 * 1024;

/** Reads from now on at about SLOW_READ_BYTES_PER_S: pauses after each message for as long as its size takes. */
function readSlowly(ws: WebSocket): void {
  let until = Date.now();
  ws.on("message", (raw: Buffer) => {
    until = Math.max(until, Date.now()) + (raw.length * 1000) / SLOW_READ_BYTES_PER_S;
    ws.pause();
    setTimeout(() => ws.resume(), until - Date.now());
  });
  ws.resume();
}

/**
 * A viewer of `/ws/session/:id?QUERY` that reads nothing until `resume` resolves (its socket
 * paused, as a busy browser tab's is), then follows slowly to the exit.
 */
export function slowViewer(url: string, id: string, query: string, resume: Promise<unknown>): Promise<Watched> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/ws/session/${id}?${query}`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  const w: Watched = { screens: [], output: Buffer.alloc(0), start: 0, received: 0 };
  return new Promise((resolve, reject) => {
    ws.on("open", () => {
      ws.pause();
      resume.then(() => readSlowly(ws), reject);
    });
    const take = (at: number, bytes: Buffer) => {
      const position = w.start + w.output.length;
      if (at !== position) throw new Error(`output at ${at}, expected ${position}`);
      w.output = Buffer.concat([w.output, bytes]);
      w.received += bytes.length;
    };
    ws.on("message", (raw: Buffer, isBinary: boolean) => {
      // A throw here would be lost in ws's emitter, and the viewer would wait forever: reject instead.
      try {
        onFrame(raw, isBinary);
      } catch (error) {
        reject(error as Error);
        ws.terminate();
      }
    });
    function onFrame(raw: Buffer, isBinary: boolean): void {
      if (isBinary) {
        const out = readBinaryOutput(raw);
        if (out === null) throw new Error(`not a binary output frame: ${raw.subarray(0, 9).toString("hex")}`);
        take(out.offset, Buffer.from(out.bytes));
        return;
      }
      const frame = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      const position = w.start + w.output.length;
      if (frame["type"] === "screen") {
        const screen = frame as unknown as ScreenFrame;
        // The skip starts where the output stopped: nothing missing, nothing twice.
        // The screen `since=screen` asks for comes first, without `skipped`.
        const first = screen.skipped === undefined && w.screens.length === 0 && position === 0;
        if (!first && screen.skipped !== screen.offset - position)
          throw new Error(`skipped ${screen.skipped} from ${position} to ${screen.offset}`);
        w.screens.push(screen);
        w.start = screen.offset;
        w.output = Buffer.alloc(0);
      } else if (frame["type"] === "replay" || frame["type"] === "stdout") {
        const bytes = Buffer.from(frame["data"] as string, frame["enc"] === "base64" ? "base64" : "utf8");
        take(
          frame["type"] === "replay" ? (frame["offset"] as number) - bytes.length : (frame["offset"] as number),
          bytes,
        );
      } else if (frame["type"] === "connected") {
        // Without `since`, output starts at the session's end when the viewer connected: where
        // the flood had got to by then (a loaded machine connects it late).
        if (w.output.length === 0 && w.screens.length === 0) w.start = frame["offset"] as number;
      } else if (frame["type"] === "exit") {
        w.exited = true;
        ws.close();
      } else if (frame["type"] === "error") throw new Error(JSON.stringify(frame));
    }
    ws.on("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on("error", reject);
    ws.on("close", () => resolve(w));
  });
}

/**
 * The same on `/v1/ws`: subscribe with `lag: "screen"` (from the start), read nothing until
 * `resume`, then follow to the exit: screens, and output events cut to the bytes after the last.
 */
export function slowMuxViewer(url: string, id: string, resume: Promise<unknown>): Promise<Watched> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/v1/ws`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  const w: Watched = { screens: [], output: Buffer.alloc(0), start: 0, received: 0 };
  return new Promise((resolve, reject) => {
    ws.on("open", () => {
      ws.send(JSON.stringify({ op: "subscribe", session: id, since: 0, lag: "screen", ref: 1 }));
      ws.pause();
      resume.then(() => readSlowly(ws), reject);
    });
    ws.on("message", (raw: Buffer) => {
      try {
        onFrame(raw);
      } catch (error) {
        reject(error as Error);
        ws.terminate();
      }
    });
    function onFrame(raw: Buffer): void {
      const frame = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      const position = w.start + w.output.length;
      if (frame["op"] === "screen") {
        const screen = frame as unknown as ScreenFrame;
        if (screen.skipped !== screen.offset - position)
          throw new Error(`skipped ${screen.skipped} from ${position} to ${screen.offset}`);
        w.screens.push(screen);
        w.start = screen.offset;
        w.output = Buffer.alloc(0);
      } else if (frame["op"] === "error" || frame["op"] === "reset") throw new Error(JSON.stringify(frame));
      const events =
        frame["op"] === "event" ? [frame["event"]] : frame["op"] === "events" ? (frame["events"] as unknown[]) : [];
      for (const e of events as Array<Record<string, unknown>>) {
        if (e["type"] === "exit") {
          w.exited = true;
          ws.close();
        }
        if (e["type"] !== "output") continue;
        const bytes = Buffer.from(e["data"] as string, e["enc"] === "base64" ? "base64" : "utf8");
        const at = e["offset"] as number;
        const end = w.start + w.output.length;
        // After a screen the first event may begin before its offset: only the bytes after it are new.
        if (at > end || at + bytes.length <= end) throw new Error(`output at ${at}+${bytes.length}, expected ${end}`);
        w.output = Buffer.concat([w.output, bytes.subarray(end - at)]);
        w.received += bytes.length - (end - at);
      }
    }
    ws.on("error", reject);
    ws.on("close", () => resolve(w));
  });
}

/** Prints the text of a file `times` times as fast as the PTY takes it, then a last line, then exits. */
const FLOODER = `const text = require("fs").readFileSync(process.argv[1]);
let left = Number(process.argv[2]);
const more = () => { while (left > 0) { left--; if (!process.stdout.write(text)) return process.stdout.once("drain", more); } process.stdout.write("\\r\\nthe end\\r\\n"); };
more();`;

/** What most floods here print: a line with colour. */
export const RED_LINES = "line of text \x1b[31mred\x1b[0m\r\n";

/** Past what the kernel's socket buffers hold on loopback (they count as sent), so the gateway sees the lag. */
const FLOOD_BYTES = 10 * 1024 * 1024;

/**
 * An 80×24 PTY session printing `text` until FLOOD_BYTES; `resume` resolves once it printed well
 * past the bound (and past what the kernel's socket buffers hold).
 */
export async function flood(gw: Awaited<ReturnType<typeof testGateway>>, file: string, text: string) {
  writeFileSync(file, text);
  const times = Math.ceil(FLOOD_BYTES / Buffer.byteLength(text));
  const { json } = await api(gw.url).post("/v1/sessions", {
    command: ["node", "-e", FLOODER, file, String(times)],
    pty: true,
    cols: 80,
    rows: 24,
  });
  const id = json.id as string;
  const session = gw.core.sessions.get(id)!;
  const resume = waitFor(async () => session.log.outputBytes > 0.8 * FLOOD_BYTES, 60_000, "a flood");
  return { id, session, resume };
}

/** The whole output of a session, as the log keeps it. */
export function wholeOutput(session: Session): Buffer {
  return Buffer.concat(session.log.readOutput(0, session.log.outputBytes).map((slice) => slice.bytes));
}
