import fc from "fast-check";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { fed, visibleText } from "../helpers/headless-terminal.js";
import type { HeadlessTerminal } from "../helpers/headless-terminal.js";
import { tempDir } from "../helpers/tmp.js";

interface Viewed {
  /** The `screen` frame, when one came first. */
  screen?: { data: string; offset: number; cols: number; rows: number; pty_cols: number; pty_rows: number } | undefined;
  /** Output after the screen, as it came: replay then live, bytes in order. */
  output: Buffer;
  /** Offset of output[0]. */
  start: number;
  exited: boolean;
}

/**
 * Follows `/ws/session/:id?QUERY` until `done` says so (or the session ends): the `screen`
 * frame and the output bytes that came after it, checked to be contiguous.
 */
function view(url: string, id: string, query: string, done: (v: Viewed) => boolean): Promise<Viewed> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/ws/session/${id}?${query}`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  const v: Viewed = { output: Buffer.alloc(0), start: -1, exited: false };
  return new Promise((resolve, reject) => {
    ws.on("message", (raw: Buffer) => {
      const frame = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      if (frame["type"] === "screen") {
        if (v.start !== -1) reject(new Error("screen after output"));
        v.screen = frame as unknown as Viewed["screen"];
      } else if (frame["type"] === "replay" || frame["type"] === "stdout") {
        const bytes = Buffer.from(frame["data"] as string, frame["enc"] === "base64" ? "base64" : "utf8");
        // A replay frame's offset is where it ends; a live frame's where it starts.
        const at =
          frame["type"] === "replay" ? (frame["offset"] as number) - bytes.length : (frame["offset"] as number);
        if (v.start === -1) v.start = at;
        if (at !== v.start + v.output.length)
          reject(new Error(`output at ${at}, expected ${v.start + v.output.length}`));
        v.output = Buffer.concat([v.output, bytes]);
      } else if (frame["type"] === "exit") v.exited = true;
      else if (frame["type"] === "error") reject(new Error(JSON.stringify(frame)));
      if (done(v)) ws.close();
    });
    ws.on("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on("error", reject);
    ws.on("close", () => resolve(v));
  });
}

/**
 * The same over `/v1/ws`: subscribe with `screen`, then output events until the session's end,
 * each cut to the bytes from the screen's offset on (the first may begin before it).
 */
function viewMux(url: string, id: string): Promise<Viewed> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/v1/ws`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  const v: Viewed = { output: Buffer.alloc(0), start: -1, exited: false };
  return new Promise((resolve, reject) => {
    ws.on("open", () => ws.send(JSON.stringify({ op: "subscribe", session: id, screen: true, ref: 1 })));
    ws.on("message", (raw: Buffer) => {
      const frame = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      const events =
        frame["op"] === "event" ? [frame["event"]] : frame["op"] === "events" ? (frame["events"] as unknown[]) : [];
      if (frame["op"] === "screen") {
        v.screen = { ...(frame as unknown as NonNullable<Viewed["screen"]>) };
        v.start = frame["offset"] as number;
      } else if (frame["op"] === "subscribed") {
        if (v.screen === undefined) reject(new Error("subscribed before screen"));
        // Ended before what the screen shows: its end comes in `subscribed`.
        if (frame["end"] !== undefined) v.exited = true;
      } else if (frame["op"] === "error" || frame["op"] === "reset") reject(new Error(JSON.stringify(frame)));
      for (const e of events as Array<Record<string, unknown>>) {
        if (e["type"] === "exit") v.exited = true;
        if (e["type"] !== "output") continue;
        const bytes = Buffer.from(e["data"] as string, e["enc"] === "base64" ? "base64" : "utf8");
        const at = e["offset"] as number;
        const end = v.start + v.output.length;
        if (at > end || at + bytes.length <= end) reject(new Error(`output at ${at}+${bytes.length}, expected ${end}`));
        v.output = Buffer.concat([v.output, bytes.subarray(end - at)]);
      }
      if (v.exited) ws.close();
    });
    ws.on("error", reject);
    ws.on("close", () => resolve(v));
  });
}

/** Every line of the active buffer (scrollback included), trailing blanks trimmed, and the cursor. */
function bufferText(term: HeadlessTerminal): string {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < buffer.length; y++) lines.push(buffer.getLine(y)!.translateToString(true).trimEnd());
  while (lines.at(-1) === "") lines.pop();
  return `${buffer.type} cursor ${buffer.cursorX},${buffer.cursorY}\n${lines.join("\n")}`;
}

async function wholeOutput(url: string, id: string): Promise<Buffer> {
  const res = await fetch(`${url}/v1/sessions/${id}/output`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
  return Buffer.from(await res.arrayBuffer());
}

/** Pieces a program prints: text, wide and accented characters, line ends, colours, moves, erases, regions, the alternate screen. */
const PIECES = [
  "hello ",
  "a fairly long line of text that wraps past the edge of an eighty-column terminal, surely ",
  "é",
  "漢字",
  "\r\n",
  "\n",
  "\r",
  "\x1b[31m",
  "\x1b[1;44m",
  "\x1b[0m",
  "\x1b[5;10H",
  "\x1b[H",
  "\x1b[K",
  "\x1b[2J",
  "\x1b[3;12r",
  "\x1b[r",
  "\x1b[?1049h",
  "\x1b[?1049l",
  "\x1b]2;title\x07",
  "\x1b7",
  "\x1b8",
  "\t",
];

/** A program that prints `chunks` (base64, one per line of a file) 3 ms apart, then exits. */
const PRINTER = `const fs = require("fs");
const chunks = fs.readFileSync(process.argv[1], "utf8").split("\\n").filter(Boolean);
let i = 0;
const next = () => { if (i === chunks.length) return; process.stdout.write(Buffer.from(chunks[i++], "base64"), () => setTimeout(next, 3)); };
next();`;

describe("/ws/session/:id?since=screen", () => {
  it("property: the screen and the output after it (both endpoints) leave a terminal as the whole output does", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const dir = tempDir();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 12 }), {
          minLength: 5,
          maxLength: 60,
        }),
        fc.double({ min: 0, max: 1.2, noNaN: true }),
        async (chunks, fraction) => {
          const file = join(dir, `chunks-${run++}`);
          writeFileSync(file, chunks.map((c) => Buffer.from(c.join("")).toString("base64")).join("\n"));
          const { json } = await http.post("/v1/sessions", {
            command: ["node", "-e", PRINTER, file],
            pty: true,
            cols: 80,
            rows: 24,
          });
          const id = json.id as string;
          // A random moment: once it printed a random part of its output (while it prints, or after it ended).
          const bytes = fraction * chunks.reduce((n, c) => n + Buffer.byteLength(c.join("")), 0);
          await waitFor(
            async () => {
              const s = (await http.get(`/v1/sessions/${id}`)).json as { outputBytes: number; state: string };
              return s.outputBytes >= bytes || s.state !== "running";
            },
            10_000,
            "output",
          );
          const [v, mux] = await Promise.all([
            view(gw.url, id, "since=screen", (seen) => seen.exited),
            viewMux(gw.url, id),
          ]);
          const all = await wholeOutput(gw.url, id);
          const reference = await fed(80, 24, all);
          for (const seen of [v, mux]) {
            expect(seen.screen).toBeDefined();
            expect(seen.screen!.pty_cols).toBe(80);
            // The output after the screen starts at its offset and runs to the end.
            if (seen.start !== -1) expect(seen.start).toBe(seen.screen!.offset);
            expect(seen.screen!.offset + seen.output.length).toBe(all.length);
            const viewer = await fed(80, 24, seen.screen!.data, seen.output);
            expect(bufferText(viewer)).toBe(bufferText(reference));
            viewer.dispose();
          }
          reference.dispose();
        },
      ),
      { numRuns: 20 },
    );
  }, 120_000);

  it("draws the screen at the viewer's size and says the PTY's", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", {
      command: ["sh", "-c", "seq 1 100; printf 'last line'; sleep 30"],
      pty: true,
      cols: 120,
      rows: 40,
    });
    await waitFor(async () => (await wholeOutput(gw.url, json.id)).includes("last line"), 10_000, "output");
    const v = await view(gw.url, json.id, "since=screen&cols=80&rows=24", (seen) => seen.screen !== undefined);
    expect(v.screen).toMatchObject({ cols: 80, rows: 24, pty_cols: 120, pty_rows: 40 });
    const text = (await http.get(`/v1/sessions/${json.id}/screen?cols=80&rows=24`)).json.screen as string;
    expect(bufferText(await fed(80, 24, v.screen!.data))).toBe(`normal cursor 9,23\n${text}`);
  });

  it("shows vim, opened after megabytes of output, as GET .../screen and a terminal fed everything do", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const file = join(tempDir(), "notes.txt");
    writeFileSync(file, Array.from({ length: 40 }, (_, i) => `line ${i + 1} of the notes`).join("\n"));
    const { json } = await http.post("/v1/sessions", {
      // About 4 MB of earlier output, then vim on a file, scrolled so that the cursor is mid-screen.
      command: ["sh", "-c", `head -c 3000000 /dev/zero | base64; exec vim -u NONE -N -n +20 ${file}`],
      env: { TERM: "xterm-256color" },
      pty: true,
      cols: 80,
      rows: 24,
    });
    const id = json.id as string;
    await waitFor(
      async () =>
        ((await http.get(`/v1/sessions/${id}/screen`)).json.screen as string).includes("line 20 of the notes"),
      20_000,
      "vim",
    );
    const text = (await http.get(`/v1/sessions/${id}/screen`)).json as {
      screen: string;
      offset: number;
      alternate: boolean;
    };
    expect(text.alternate).toBe(true);
    expect(text.offset).toBeGreaterThan(4_000_000);
    const v = await view(gw.url, id, "since=screen", (seen) => seen.screen !== undefined);
    const viewer = await fed(80, 24, v.screen!.data, v.output);
    const reference = await fed(80, 24, await wholeOutput(gw.url, id));
    expect(visibleText(viewer)).toBe(text.screen);
    expect(visibleText(reference)).toBe(text.screen);
    expect(bufferText(viewer)).toBe(bufferText(reference));
    viewer.dispose();
    reference.dispose();
  }, 60_000);

  it("refuses a session without a PTY as GET .../screen does, and a bad size", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", { command: ["sh", "-c", "echo hi; sleep 30"] });
    const screen = await http.get(`/v1/sessions/${json.id}/screen`);
    expect(screen.status).toBe(409);
    for (const [query, status, code] of [
      ["since=screen", 409, "WRONG_SESSION_KIND"],
      ["since=screen&cols=0", 400, "BAD_REQUEST"],
      ["since=screen&rows=1001", 400, "BAD_REQUEST"],
    ] as const) {
      const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const ws = new WebSocket(`${gw.url.replace("http", "ws")}/ws/session/${json.id}?${query}`, {
          headers: { authorization: `Bearer ${TEST_TOKEN}` },
        });
        ws.on("unexpected-response", (_req, res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => (body += chunk.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        ws.on("open", () => reject(new Error(`${query} was accepted`)));
      });
      expect(refused.status).toBe(status);
      const body = JSON.parse(refused.body) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(code);
      if (code === "WRONG_SESSION_KIND") expect(body).toEqual(screen.json);
    }
  });

  it("/v1/ws subscribe with screen: refuses it with since, a size without it, and a session without a PTY", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", { command: ["sh", "-c", "echo hi; sleep 30"] });
    const screen = await http.get(`/v1/sessions/${json.id}/screen`);
    const ws = new WebSocket(`${gw.url.replace("http", "ws")}/v1/ws`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const errors: Array<Record<string, unknown>> = [];
    ws.on("message", (raw: Buffer) => {
      const frame = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      if (frame["op"] === "error") errors.push(frame);
    });
    await new Promise((resolve) => ws.once("open", resolve));
    ws.send(JSON.stringify({ op: "subscribe", session: json.id, screen: true, since: 0, ref: 1 }));
    ws.send(JSON.stringify({ op: "subscribe", session: json.id, cols: 80, ref: 2 }));
    ws.send(JSON.stringify({ op: "subscribe", session: json.id, screen: true, ref: 3 }));
    await waitFor(() => errors.length === 3, 5_000, "three errors");
    ws.close();
    expect(errors.map((e) => [e["ref"], e["code"]])).toEqual([
      [1, "VALIDATION_FAILED"],
      [2, "VALIDATION_FAILED"],
      [3, "WRONG_SESSION_KIND"],
    ]);
    expect(errors[0]!["message"]).toMatch(/screen: is a position of its own/);
    expect(errors[1]!["message"]).toMatch(/cols: is the size of a screen/);
    expect(errors[2]!["message"]).toBe(screen.json.error.message);
  });
});
