import headless from "@xterm/headless";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HttpClient } from "../../src/client/index.js";
import { AnsiStripper } from "../../src/core/ansi-strip.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const { Terminal } = headless;

/** Lines at 80 columns, then (after the test resizes the PTY) a full-screen frame drawn at the new size. */
const PROGRAM = [
  "seq 1 200",
  "printf 'caf\\303\\251 \\346\\274\\242\\345\\255\\227 \\033[31mred\\033[0m\\n'",
  "read line",
  "printf '\\033[?1049h\\033[2J\\033[3;5Hafter resize \\033[1mbold\\033[0m\\033[40;1Hbottom'",
  "sleep 30",
].join("; ");

/** The screen text a terminal shows after playing `cast` (trailing blanks trimmed, as `/screen` gives it). */
async function playCast(cast: string): Promise<{ screen: string; header: Record<string, unknown> }> {
  const [headerLine, ...lines] = cast.trimEnd().split("\n");
  const header = JSON.parse(headerLine!) as { width: number; height: number };
  const term = new Terminal({ cols: header.width, rows: header.height, allowProposedApi: true });
  for (const line of lines) {
    const [, code, data] = JSON.parse(line) as [number, string, string];
    if (code === "r") {
      const [cols, rows] = data.split("x").map(Number);
      term.resize(cols!, rows!);
    } else await new Promise<void>((resolve) => term.write(data, resolve));
  }
  const buffer = term.buffer.active;
  const rows: string[] = [];
  for (let y = 0; y < term.rows; y++)
    rows.push(
      buffer
        .getLine(buffer.viewportY + y)!
        .translateToString(true)
        .trimEnd(),
    );
  term.dispose();
  while (rows.at(-1) === "") rows.pop();
  return { screen: rows.join("\n"), header };
}

describe("GET /v1/sessions/:id/cast", () => {
  it("plays back to the screen GET .../screen shows, resizes included", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", { command: ["sh", "-c", PROGRAM], pty: true, cols: 80, rows: 24 });
    const id = json.id as string;
    await waitFor(async () => (await http.get(`/v1/sessions/${id}/output`)).text.includes("red"), 10_000, "output");
    expect((await http.post(`/v1/sessions/${id}/resize`, { cols: 100, rows: 40 })).status).toBe(200);
    await http.post(`/v1/sessions/${id}/input`, { data: "\r" });
    await waitFor(async () => (await http.get(`/v1/sessions/${id}/output`)).text.includes("bottom"), 10_000, "frame");

    const sdk = new HttpClient({ url: gw.url, token: TEST_TOKEN });
    const cast = await (await sdk.cast(id)).text();
    const screen = await sdk.screen(id, { format: "text" });
    const played = await playCast(cast);
    expect(played.screen).toBe(screen.screen);
    expect(played.screen).toContain("after resize bold");
    expect(played.screen.split("\n")[39]).toBe("bottom");
    expect(played.header).toMatchObject({ version: 2, width: 80, height: 24, env: { TERM: "xterm-256color" } });
    expect(Math.abs((played.header["timestamp"] as number) * 1000 - json.createdAt)).toBeLessThan(2_000);

    const events = cast
      .trimEnd()
      .split("\n")
      .slice(1)
      .map((l) => JSON.parse(l) as [number, string, string]);
    expect(events.filter((e) => e[1] === "r").map((e) => e[2])).toEqual(["100x40"]);
    // Times never go back, and the text is the output's, split characters made whole.
    const times = events.map((e) => e[0]);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const output = await (await sdk.transcript(id)).text();
    expect(
      events
        .filter((e) => e[1] === "o")
        .map((e) => e[2])
        .join(""),
    ).toBe(output);
    expect(output).toContain("café 漢字");
  });

  it("answers with the auth and visibility of /output, and 409 for a session without a PTY", async () => {
    const VIEWER = "viewer-token-0123456789abcdef";
    const gw = await testGateway({
      config: { auth: { tokens: [{ name: "vera", token: VIEWER, role: "viewer", sessions: ["other-*"] }] } },
    });
    const http = api(gw.url);
    const pty = (await http.post("/v1/sessions", { command: ["true"], pty: true })).json.id as string;
    const pipe = (await http.post("/v1/sessions", { command: ["echo", "hi"], pty: false })).json.id as string;
    expect((await api(gw.url, "").get(`/v1/sessions/${pty}/cast`)).status).toBe(401);
    expect((await api(gw.url, "wrong-token-0123456789abcdef").get(`/v1/sessions/${pty}/cast`)).status).toBe(401);
    const hidden = await api(gw.url, VIEWER).get(`/v1/sessions/${pty}/cast`);
    expect([hidden.status, hidden.json.error.code]).toEqual([404, "SESSION_NOT_FOUND"]);
    expect((await api(gw.url, VIEWER).get(`/v1/sessions/${pty}/transcript`)).status).toBe(404);
    const piped = await http.get(`/v1/sessions/${pipe}/cast`);
    expect([piped.status, piped.json.error.code]).toEqual([409, "WRONG_SESSION_KIND"]);
    const bad = await http.get(`/v1/sessions/${pipe}/transcript?format=html`);
    expect([bad.status, bad.json.error.code]).toEqual([400, "BAD_REQUEST"]);
  });
});

describe("GET /v1/sessions/:id/transcript", () => {
  it("gives the bytes of /output (raw) and the text without escape sequences (text)", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const script = "printf '\\033]2;title\\007\\033[1;32mgreen\\033[0m plain\\r\\nnext\\tline\\n'; seq 1 3000";
    const { json } = await http.post("/v1/sessions", { command: ["sh", "-c", script], pty: true });
    await waitFor(async () => (await http.get(`/v1/sessions/${json.id}`)).json.state === "exited", 10_000, "exit");
    const out = await fetch(`${gw.url}/v1/sessions/${json.id}/output`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const bytes = Buffer.from(await out.arrayBuffer());
    const raw = await fetch(`${gw.url}/v1/sessions/${json.id}/transcript`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(raw.headers.get("content-disposition")).toBe(`attachment; filename="${json.id}.out"`);
    expect(Buffer.from(await raw.arrayBuffer()).equals(bytes)).toBe(true);
    const text = (await http.get(`/v1/sessions/${json.id}/transcript?format=text`)).text;
    expect(text.startsWith("green plain\nnext\tline\n1\n2\n")).toBe(true);
    expect(text.endsWith("2999\n3000\n")).toBe(true);
    // No control characters but tab and newline.
    expect([...text].filter((c) => c.charCodeAt(0) < 0x20 && c !== "\t" && c !== "\n")).toEqual([]);
  });
});

describe("AnsiStripper", () => {
  it("gives the same text however the output is split into pieces", () => {
    const piece = fc.constantFrom(
      "plain ",
      "\x1b[1;31m",
      "\x1b]0;title\x07",
      "\x1b]8;;http://x\x1b\\",
      "\x1bP1$r\x1b\\",
      "\r\n",
      "\t",
      "\x1b(B",
      "\x1b7",
      "漢字",
      "\x1b[?1049h",
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 8 }), (pieces, cuts) => {
        const text = pieces.join("");
        const whole = new AnsiStripper().push(text);
        const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const stripper = new AnsiStripper();
        let split = "";
        let from = 0;
        for (const cut of [...at, text.length]) {
          split += stripper.push(text.slice(from, cut));
          from = cut;
        }
        expect(split).toBe(whole);
        expect(whole).toBe(
          pieces
            .filter((p) => !p.includes("\x1b"))
            .join("")
            .replace(/\r/g, ""),
        );
      }),
    );
  });
});
