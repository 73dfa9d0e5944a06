/**
 * Real full-screen programs in a PTY after 20 MB of earlier output, for the screen tests that
 * open them through attach (test/screen/screen-programs.test.ts) and the web page
 * (test/web/ui-screen-programs.test.ts): the session, and the screen a terminal that saw every
 * byte shows (a fresh @xterm/headless fed the /output: see {@link reference}).
 */
import headless from "@xterm/headless";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { afterTest } from "../helpers/cleanup.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";

const { Terminal } = headless;

/**
 * About 21 MB through the PTY (it turns each \n into \r\n) before the program starts: more than
 * twice the screen thread's feed bound (SCREEN_FEED_MAX_BYTES) and GET .../output's page, and
 * several screen checkpoints (SCREEN_CHECKPOINT_BYTES).
 */
const EARLIER_LINE = "earlier output of this session, printed before the program";
const EARLIER = `yes '${EARLIER_LINE}' | head -c 20000000`;
const EARLIER_BYTES = 20_000_000;
/** The reference terminal's scrollback. */
const SCROLLBACK = 1000;

let earlierOnTty: Buffer | undefined;
/** The bytes EARLIER puts through the PTY: its lines, each \n as \r\n. */
function earlierBytes(): Buffer {
  if (earlierOnTty !== undefined) return earlierOnTty;
  const lines = `${EARLIER_LINE}\n`.repeat(Math.ceil(EARLIER_BYTES / (EARLIER_LINE.length + 1)));
  return (earlierOnTty = Buffer.from(lines.slice(0, EARLIER_BYTES).replaceAll("\n", "\r\n"), "latin1"));
}
/** Each case: the 20 MB through the PTY, two parses of them, a viewer's start; well within this. */
export const CASE_MS = 60_000;
/** Output unchanged this long: the program has drawn and waits (or is stopped). */
const QUIET_MS = 800;

/**
 * A small TUI on the alternate screen: a grid of letters, then 300 frames that each redraw only
 * the 20 cells they change (a cursor move and one coloured character each), then a status line.
 * It ends with the cursor at the top-left and waits without printing.
 */
export const TUI = `const cols = process.stdout.columns, rows = process.stdout.rows;
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

export type Http = ReturnType<typeof api>;

/** A program's session on a gateway, as the checks below read it. */
export interface Program {
  http: Http;
  url: string;
  id: string;
  pid: number;
}

/** A PTY session on `url` running `program` (a shell command) after the earlier output. */
export async function startProgram(
  url: string,
  program: string,
  size: { cols: number; rows: number },
  env: Record<string, string> = {},
): Promise<Program> {
  const http = api(url);
  const { status, json } = await http.post("/v1/sessions", {
    command: ["sh", "-c", `${EARLIER}; exec ${program}`],
    env: { TERM: "xterm-256color", HOME: tempDir(), ...env },
    pty: true,
    ...size,
  });
  expect(status).toBe(201);
  return { http, url, id: json.id as string, pid: json.pid as number };
}

/** Waits until GET .../screen matches (the screen thread has parsed the 20 MB and the program drew). */
export async function screenShows(p: Program, pattern: RegExp, what: string): Promise<void> {
  await waitFor(
    async () => pattern.test((await p.http.get(`/v1/sessions/${p.id}/screen`)).json.screen as string),
    CASE_MS / 2,
    what,
  );
}

/** Waits until the session has printed nothing for QUIET_MS. */
export async function quiet(p: Program): Promise<number> {
  let last = -1;
  let since = Date.now();
  for (;;) {
    const bytes = (await p.http.get(`/v1/sessions/${p.id}`)).json.outputBytes as number;
    if (bytes !== last) [last, since] = [bytes, Date.now()];
    else if (Date.now() - since >= QUIET_MS) return bytes;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The rows a fresh terminal of the PTY's size shows after every byte the session printed. The
 * earlier output is compared byte for byte with what EARLIER prints, and only its last
 * SCROLLBACK + 1000 lines are fed: after plain lines shorter than the screen, a terminal shows,
 * scrolls back through and keeps only the last of them, so the rest would only cost ~1 s of
 * parsing per call.
 */
export async function reference(p: Program, cols: number, rows: number): Promise<string[]> {
  const term = new Terminal({ cols, rows, scrollback: SCROLLBACK, allowProposedApi: true });
  // Page by page (GET .../output answers at most 8 MiB at a time).
  const pages: Buffer[] = [];
  let since = 0;
  let total: number;
  do {
    const res = await fetch(`${p.url}/v1/sessions/${p.id}/output?since=${since}`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(res.status).toBe(200);
    pages.push(Buffer.from(await res.arrayBuffer()));
    since = Number(res.headers.get("x-switchboard-next-offset"));
    total = Number(res.headers.get("x-switchboard-output-bytes"));
  } while (since < total);
  expect(since).toBeGreaterThan(EARLIER_BYTES);
  const output = Buffer.concat(pages);
  const earlier = earlierBytes();
  expect(output.subarray(0, earlier.length).equals(earlier), "the earlier output, byte for byte").toBe(true);
  const lineBytes = EARLIER_LINE.length + 2;
  const skipped = Math.floor(earlier.length / lineBytes) - (SCROLLBACK + 1000);
  await new Promise<void>((resolve) => term.write(output.subarray(skipped * lineBytes), resolve));
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
export const text = (rows: string[]): string => rows.join("\n").replace(/\n+$/, "");

/** A program opened after the earlier output and driven to the screen the viewers must show. */
export interface ProgramCase {
  name: string;
  size: { cols: number; rows: number };
  /** Whether the screen shown is the alternate one. */
  alternate: boolean;
  /** The program's command line; `dir` is a temp dir for its files. */
  command(dir: string): string;
  /** Once the session started: waits for the program to draw, types, or freezes it. */
  drive(p: Program): Promise<void>;
}

const input = (p: Program, data: string) => p.http.post(`/v1/sessions/${p.id}/input`, { data });

/** The TUI script in `dir`. */
function tuiIn(dir: string): string {
  const script = join(dir, "tui.js");
  writeFileSync(script, TUI);
  return script;
}

export const PROGRAMS: readonly ProgramCase[] = [
  {
    name: "vim editing a file",
    size: { cols: 80, rows: 24 },
    alternate: true,
    command: (dir) => {
      const file = join(dir, "notes.txt");
      writeFileSync(file, Array.from({ length: 60 }, (_, i) => `line ${i + 1} of the notes`).join("\n"));
      return `vim -u NONE -N -n +30 ${file}`;
    },
    drive: async (p) => {
      await screenShows(p, /line 30 of the notes/, "vim");
      // Typed edits: vim redraws only the rows they change (inserted lines scroll a region).
      await input(p, "Oinserted above 30\x1bjddGoappended at the end\x1b");
      await input(p, ":set number\r");
      await screenShows(p, /^ +61 appended at the end$/m, "the edits");
    },
  },
  {
    name: "top, frozen after it drew (its next refresh 1,000 s away)",
    size: { cols: 100, rows: 30 },
    alternate: false,
    command: () => "top -d 1000",
    drive: (p) => screenShows(p, /PID +USER/, "top"),
  },
  {
    name: "htop, stopped (SIGSTOP) once it drew",
    size: { cols: 100, rows: 30 },
    alternate: true,
    command: () => "htop -d 100",
    drive: async (p) => {
      await screenShows(p, /PID +USER/, "htop");
      await quiet(p);
      process.kill(p.pid, "SIGSTOP");
      afterTest(() => process.kill(p.pid, "SIGKILL"));
    },
  },
  {
    name: "less, paged and searched",
    size: { cols: 80, rows: 24 },
    alternate: true,
    command: (dir) => {
      const file = join(dir, "pages.txt");
      const long = " and a tail long enough to be cut at the edge of the screen".repeat(3);
      writeFileSync(file, Array.from({ length: 500 }, (_, i) => `row ${i + 1}${i % 7 === 0 ? long : ""}`).join("\n"));
      return `less -S ${file}`;
    },
    drive: async (p) => {
      await screenShows(p, /^row 23$/m, "less");
      await input(p, "  /row 2.0\r");
      await screenShows(p, /^row 201$/m, "the search");
    },
  },
  {
    name: "a TUI that redraws only the cells that changed",
    size: { cols: 80, rows: 24 },
    alternate: true,
    command: (dir) => `node ${tuiIn(dir)}`,
    drive: (p) => screenShows(p, /frame 300 of 80x24/, "the last frame"),
  },
];

/** The TUI at `size`, drawn to its last frame. */
export async function openTui(url: string, size: { cols: number; rows: number }): Promise<Program> {
  const p = await startProgram(url, `node ${tuiIn(tempDir())}`, size);
  await screenShows(p, new RegExp(`frame 300 of ${size.cols}x${size.rows}`), "the last frame");
  return p;
}

/**
 * Opens `c` on the gateway at `url`, drives it, and waits until it printed nothing for a while:
 * the rows a fresh terminal that saw every byte shows, and the session.
 */
export async function openProgram(url: string, c: ProgramCase): Promise<{ p: Program; expected: string }> {
  const p = await startProgram(url, c.command(tempDir()), c.size);
  await c.drive(p);
  await quiet(p);
  const expected = text(await reference(p, c.size.cols, c.size.rows));
  const screen = (await p.http.get(`/v1/sessions/${p.id}/screen`)).json as { screen: string; alternate: boolean };
  expect(screen.screen).toBe(expected);
  expect(screen.alternate).toBe(c.alternate);
  return { p, expected };
}
