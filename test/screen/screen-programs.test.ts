/**
 * Real full-screen programs in a PTY, opened after 50 MB of earlier output: the gateway's screen
 * (GET .../screen) and `switchboard attach` in a tmux pane (it starts from `?since=screen`) show
 * what a terminal that saw every byte shows (a fresh @xterm/headless fed the whole /output).
 */
import headless from "@xterm/headless";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TEST_TOKEN, api, testGateway, waitFor } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { CLI, Tmux, shellQuote } from "../cli/helpers.js";

const { Terminal } = headless;

/** About 52 MB through the PTY (it turns each \n into \r\n) before the program starts. */
const EARLIER = "yes 'earlier output of this session, printed before the program' | head -c 50000000";
const EARLIER_BYTES = 50_000_000;
/** Each case: the 50 MB through the PTY, two parses of them, a CLI start; well within this. */
const CASE_MS = 60_000;
/** Output unchanged this long: the program has drawn and waits (or is stopped). */
const QUIET_MS = 800;

const terminals: Tmux[] = [];
afterAll(() => {
  for (const t of terminals.splice(0)) t.kill();
});

/**
 * A small TUI on the alternate screen: a grid of letters, then 300 frames that each redraw only
 * the 20 cells they change (a cursor move and one coloured character each), then a status line.
 * It ends with the cursor at the top-left and waits without printing.
 */
const TUI = `const cols = process.stdout.columns, rows = process.stdout.rows;
let seed = 7;
const rand = (n) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
const letter = (x, y, f) => String.fromCharCode(97 + ((x * 7 + y * 13 + f) % 26));
let first = "\\x1b[?1049h\\x1b[?25l\\x1b[H\\x1b[2J";
for (let y = 0; y < rows; y++) {
  first += "\\x1b[" + (y + 1) + ";1H";
  for (let x = 0; x < cols; x++) first += letter(x, y, 0);
}
const frames = [first];
for (let f = 1; f <= 300; f++) {
  let out = "";
  for (let i = 0; i < 20; i++) {
    const x = rand(cols), y = 1 + rand(rows - 1);
    out += "\\x1b[" + (y + 1) + ";" + (x + 1) + "H\\x1b[3" + (1 + rand(7)) + "m" + letter(x, y, f) + "\\x1b[0m";
  }
  frames.push(out);
}
frames.push("\\x1b[1;1H\\x1b[7m frame 300 of " + cols + "x" + rows + " \\x1b[0m\\x1b[1;1H");
const next = () => { if (frames.length > 0) process.stdout.write(frames.shift(), next); };
next();
setInterval(() => undefined, 1 << 30);`;

type Http = ReturnType<typeof api>;

interface Program {
  http: Http;
  url: string;
  id: string;
  pid: number;
}

/** A PTY session running `program` (a shell command) after the earlier output. */
async function start(program: string, size: { cols: number; rows: number }, env: Record<string, string> = {}) {
  const gw = await testGateway();
  const http = api(gw.url);
  const { json } = await http.post("/v1/sessions", {
    command: ["sh", "-c", `${EARLIER}; exec ${program}`],
    env: { TERM: "xterm-256color", HOME: tempDir(), ...env },
    pty: true,
    ...size,
  });
  return { http, url: gw.url, id: json.id as string, pid: json.pid as number };
}

/** Waits until GET .../screen matches (the screen thread has parsed the 50 MB and the program drew). */
async function screenShows(p: Program, pattern: RegExp, what: string): Promise<void> {
  await waitFor(
    async () => pattern.test((await p.http.get(`/v1/sessions/${p.id}/screen`)).json.screen as string),
    CASE_MS / 2,
    what,
  );
}

/** Waits until the session has printed nothing for QUIET_MS. */
async function quiet(p: Program): Promise<number> {
  let last = -1;
  let since = Date.now();
  for (;;) {
    const bytes = (await p.http.get(`/v1/sessions/${p.id}`)).json.outputBytes as number;
    if (bytes !== last) [last, since] = [bytes, Date.now()];
    else if (Date.now() - since >= QUIET_MS) return bytes;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The rows a fresh terminal of the PTY's size shows after every byte the session printed. */
async function reference(p: Program, cols: number, rows: number): Promise<string[]> {
  const term = new Terminal({ cols, rows, scrollback: 1000, allowProposedApi: true });
  // Page by page (GET .../output answers at most 8 MiB at a time), each parsed before the next.
  let since = 0;
  let total: number;
  do {
    const res = await fetch(`${p.url}/v1/sessions/${p.id}/output?since=${since}`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const page = Buffer.from(await res.arrayBuffer());
    await new Promise<void>((resolve) => term.write(page, resolve));
    since = Number(res.headers.get("x-switchboard-next-offset"));
    total = Number(res.headers.get("x-switchboard-output-bytes"));
  } while (since < total);
  expect(since).toBeGreaterThan(EARLIER_BYTES);
  const buffer = term.buffer.active;
  const lines = Array.from({ length: rows }, (_, y) =>
    buffer
      .getLine(buffer.viewportY + y)!
      .translateToString(true)
      .trimEnd(),
  );
  term.dispose();
  return lines;
}

/** Rows as GET .../screen's text has them: trailing empty rows dropped. */
const text = (rows: string[]): string => rows.join("\n").replace(/\n+$/, "");

/** `switchboard attach --read-only` in a tmux pane of `cols`×`rows`. */
function attach(p: Program, cols: number, rows: number): Tmux {
  const t = new Tmux({ SWITCHBOARD_URL: p.url, SWITCHBOARD_TOKEN: TEST_TOKEN }, cols, rows);
  terminals.push(t);
  t.start();
  t.type(`${CLI.map(shellQuote).join(" ")} attach --read-only -- ${p.id}`);
  return t;
}

/** Polls the pane until it shows `expected` (or the time is up), then compares. */
async function paneShows(t: Tmux, expected: string): Promise<void> {
  const deadline = Date.now() + CASE_MS / 3;
  while (t.screen() !== expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(t.screen()).toBe(expected);
}

/** GET .../screen and attach in a pane of the PTY's size show the reference's rows. */
async function expectSameScreen(p: Program, cols: number, rows: number, alternate?: boolean): Promise<void> {
  await quiet(p);
  const expected = text(await reference(p, cols, rows));
  const screen = (await p.http.get(`/v1/sessions/${p.id}/screen`)).json as { screen: string; alternate: boolean };
  expect(screen.screen).toBe(expected);
  if (alternate !== undefined) expect(screen.alternate).toBe(alternate);
  await paneShows(attach(p, cols, rows), expected);
}

describe("full-screen programs after 50 MB of output: GET .../screen and attach (tmux) show the whole output's screen", () => {
  it(
    "vim editing a file",
    async () => {
      const file = join(tempDir(), "notes.txt");
      writeFileSync(file, Array.from({ length: 60 }, (_, i) => `line ${i + 1} of the notes`).join("\n"));
      const p = await start(`vim -u NONE -N -n +30 ${file}`, { cols: 80, rows: 24 });
      await screenShows(p, /line 30 of the notes/, "vim");
      // Typed edits: vim redraws only the rows they change (inserted lines scroll a region).
      await p.http.post(`/v1/sessions/${p.id}/input`, { data: "Oinserted above 30\x1bjddGoappended at the end\x1b" });
      await p.http.post(`/v1/sessions/${p.id}/input`, { data: ":set number\r" });
      await screenShows(p, /^ +61 appended at the end$/m, "the edits");
      await expectSameScreen(p, 80, 24, true);
    },
    CASE_MS,
  );

  it(
    "top, frozen after it drew (its next refresh 1,000 s away)",
    async () => {
      const p = await start("top -d 1000", { cols: 100, rows: 30 });
      await screenShows(p, /PID +USER/, "top");
      await expectSameScreen(p, 100, 30);
    },
    CASE_MS,
  );

  it(
    "htop, stopped (SIGSTOP) once it drew",
    async () => {
      const p = await start("htop -d 100", { cols: 100, rows: 30 });
      await screenShows(p, /PID +USER/, "htop");
      await quiet(p);
      process.kill(p.pid, "SIGSTOP");
      try {
        await expectSameScreen(p, 100, 30, true);
      } finally {
        process.kill(p.pid, "SIGKILL");
      }
    },
    CASE_MS,
  );

  it(
    "less, paged and searched",
    async () => {
      const file = join(tempDir(), "pages.txt");
      const long = " and a tail long enough to be cut at the edge of the screen".repeat(3);
      writeFileSync(file, Array.from({ length: 500 }, (_, i) => `row ${i + 1}${i % 7 === 0 ? long : ""}`).join("\n"));
      const p = await start(`less -S ${file}`, { cols: 80, rows: 24 });
      await screenShows(p, /^row 23$/m, "less");
      await p.http.post(`/v1/sessions/${p.id}/input`, { data: "  /row 2.0\r" });
      await screenShows(p, /^row 201$/m, "the search");
      await expectSameScreen(p, 80, 24, true);
    },
    CASE_MS,
  );

  it(
    "a TUI that redraws only the cells that changed",
    async () => {
      const script = join(tempDir(), "tui.js");
      writeFileSync(script, TUI);
      const p = await start(`node ${script}`, { cols: 80, rows: 24 });
      await screenShows(p, /frame 300 of 80x24/, "the last frame");
      await expectSameScreen(p, 80, 24, true);
    },
    CASE_MS,
  );
});

describe("a viewer smaller than the PTY", () => {
  it(
    "attach in an 80×24 pane shows a 120×40 TUI's rows clipped, never wrapped",
    async () => {
      const script = join(tempDir(), "tui.js");
      writeFileSync(script, TUI);
      const p = await start(`node ${script}`, { cols: 120, rows: 40 });
      await screenShows(p, /frame 300 of 120x40/, "the last frame");
      await quiet(p);
      // The cursor is at the top-left: the window is the top-left 80×24 of the 120×40 screen.
      const clipped = (await reference(p, 120, 40)).slice(0, 24).map((row) => row.slice(0, 80));
      expect(clipped.every((row) => row.length === 80)).toBe(true);
      const small = (await p.http.get(`/v1/sessions/${p.id}/screen?cols=80&rows=24`)).json.screen as string;
      expect(small).toBe(text(clipped));
      const t = attach(p, 80, 24);
      // attach says once that the sizes differ, over the last row of a full-screen program.
      await t.waitFor(/the session's terminal is 120×40 and this one 80×24/);
      const deadline = Date.now() + CASE_MS / 3;
      const shown = () => t.screen().split("\n");
      while (shown().slice(0, 23).join("\n") !== clipped.slice(0, 23).join("\n") && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const rows = shown();
      expect(rows).toHaveLength(24);
      expect(rows.slice(0, 23)).toEqual(clipped.slice(0, 23));
      expect(rows[23]).toMatch(/^\[switchboard\] the session's terminal is 120×40/);
    },
    CASE_MS,
  );
});
