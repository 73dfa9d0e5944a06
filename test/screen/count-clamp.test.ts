import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CountClamp } from "../../src/screen/count-clamp.js";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import { chunked } from "../helpers/chunks.js";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

/** A multiple of every line's worth of characters at up to 8 columns (cols, ⌊cols/2⌋ wide ones). */
const LINES = 840;
const HUGE_MAX = 2 ** 31 - 1;

interface Size {
  cols: number;
  rows: number;
  scrollback: number;
}

/** Output that moves, scrolls, sets regions and modes, prints wide and combined characters. */
const text = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z ]{1,6}$/) },
  fc.constantFrom("漢", "e\u0301", "\x1b(0q\x1b(B", "\r\n", "\n", "\r", "\b", "\t", "\x1b[31m", "\x1b[0m"),
  fc.constantFrom("\x1b[H", "\x1b[2;3H", "\x1b[2J", "\x1b[1;2r", "\x1b[r", "\x1b[?6h", "\x1b[?6l", "\x1b7", "\x1b8"),
  fc.constantFrom("\x1b[4h", "\x1b[4l", "\x1b[?7l", "\x1b[?7h", "\x1b[?1049h", "\x1b[?1049l", "\x1b[3g", "\x1bH"),
);

/** How a count is written (bytes as Latin-1): the CSI's introducer, what comes before the count, and after it up to the final. */
const FORMS: Array<[string, string, string]> = [
  ["\x1b[", "", ""],
  ["\x1b[", "000", ""],
  ["\x1b[", "", ";7"],
  ["\x1b[", "", ":2:3;4"],
  ["\x1b[", "", "\n"],
  ["\x1b[", "", "\x7f"],
  ["\xc2\x9b", "", ""],
  ["\x1b\x80[", "", ""],
  ["\x1b\n[", "", ""],
  ["\x1b[", "", "\x80"],
  ["\x1b[", "", "\xc3"],
  ["\x1b[", "", "\xc3\xa9"],
  ["\x1b[", "?", ""],
  ["\x1b[", "", " "],
  ["\x1b[", "", ";".repeat(40) + "9"],
  ["\x1b[", "", ":1".repeat(40)],
];
const FINALS = ["b", "b", "b", "L", "M", "S", "T", "I", "Z", "@", "X"];

/**
 * A counted sequence, after a character to repeat or none, as `[printed, reference]`: a huge count is printed, and the reference has
 * one it shows the same as (the same modulo LINES, past every row and scrollback line filled).
 */
const counted = (size: Size) => {
  // xterm lays out at least 2 columns, whatever the size it was given.
  const past = Math.max(size.cols, 2) * (size.rows + size.scrollback + 4);
  return fc
    .tuple(
      fc.constantFrom(...FORMS),
      fc.constantFrom(...FINALS),
      fc.oneof(fc.integer({ min: 0, max: past + LINES }), fc.integer({ min: past + LINES, max: HUGE_MAX })),
      fc.constantFrom("x", "", Buffer.from("漢").toString("latin1"), Buffer.from("e\u0301").toString("latin1")),
    )
    .map(([[intro, before, after], final, count, char]) => {
      const reference = count < past ? count : past + ((count - past) % LINES);
      const bytes = (n: number) => Buffer.from(`${char}${intro}${before}${n}${after}${final}`, "latin1");
      return [bytes(count), bytes(reference)] as const;
    });
};

const scenario = fc
  .record({
    cols: fc.integer({ min: 1, max: 8 }),
    rows: fc.integer({ min: 1, max: 4 }),
    scrollback: fc.integer({ min: 0, max: 5 }),
  })
  .chain((size) =>
    fc.record({
      size: fc.constant(size),
      parts: fc.array(
        fc.oneof(
          text.map((t) => [Buffer.from(t), Buffer.from(t)] as const),
          counted(size),
        ),
        { minLength: 1, maxLength: 12 },
      ),
      cuts: fc.array(fc.nat(), { maxLength: 5 }),
    }),
  );

/** What an emulator shows after `chunks`: text, cursor, and its whole state (scrollback, modes, pen). */
async function stateAfter(size: Size, chunks: Buffer[], clamped: boolean) {
  const emulator = new ScreenEmulator(size.cols, size.rows, { scrollback: size.scrollback });
  if (!clamped)
    (emulator as unknown as { clamp: { push: (b: Uint8Array) => Uint8Array[] } }).clamp = { push: (b) => [b] };
  for (const chunk of chunks) emulator.write(chunk);
  await emulator.settled();
  const view = emulator.view({ format: "text" });
  const state = { screen: view.screen, cursor: view.cursor, whole: emulator.checkpoint(size.scrollback) };
  emulator.dispose();
  return state;
}

describe("CountClamp", () => {
  it("property: the screen, cursor and scrollback after huge counts are those xterm shows for the counts they stand for", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ size, parts, cuts }) => {
        const printed = Buffer.concat(parts.map((p) => p[0]));
        const reference = Buffer.concat(parts.map((p) => p[1]));
        expect(await stateAfter(size, chunked(printed, cuts), true)).toEqual(
          await stateAfter(size, [reference], false),
        );
      }),
      { numRuns: 400, interruptAfterTimeLimit: 20_000 },
    );
  });

  it("passes output with no count to lower through whole, however it is cut", () => {
    const size = { cols: 80, rows: 24, scrollback: 1000 };
    const bytes = Buffer.from("x\x1b[5b\x1b[31mred\x1b[0m é\xc2\x9b3L\x1b[?25l\x1b]2;t\x07\x1b[24;80H".repeat(3));
    for (const cut of [1, 2, 5, 17, 40]) {
      const clamp = new CountClamp();
      const out = chunked(bytes, [cut, cut * 2, cut * 3]).flatMap((chunk) => clamp.push(chunk, size));
      expect(Buffer.concat(out).equals(bytes)).toBe(true);
      expect(clamp.idle).toBe(true);
    }
  });

  it("lowers each clamped count to the bound for the size, holding parameters across pushes", () => {
    const size = { cols: 80, rows: 24, scrollback: 1000 };
    const clamp = new CountClamp();
    const pushed = (text: string) => Buffer.concat(clamp.push(Buffer.from(text, "latin1"), size)).toString("latin1");
    expect(pushed("x\x1b[999999")).toBe("x\x1b[");
    expect(clamp.idle).toBe(false);
    // 80 × 1026 = 82,080 characters fill every row and scrollback line; then the count modulo 80.
    expect(pushed("999\n;5b")).toBe(`\n${82_080 + ((999_999_999 - 82_080) % 80)};5b`);
    expect(pushed("\x1b[99999999999999L\x1b[1000M\x1b[300Z\x1b[0020I\x1b[?9999999999S")).toBe(
      "\x1b[24L\x1b[24M\x1b[80Z\x1b[0020I\x1b[?9999999999S",
    );
    expect(clamp.idle).toBe(true);
  });

  it("holds of long parameter lists across pushes what xterm reads: 32 parameters and 32 sub-parameters, digits saturated", () => {
    const size = { cols: 80, rows: 24, scrollback: 1000 };
    const clamp = new CountClamp();
    // The sequence's start in one push, the rest in the next: what is held goes on as xterm reads it.
    const pushed = (text: string) =>
      Buffer.concat([
        ...clamp.push(Buffer.from(text.slice(0, 3), "latin1"), size),
        ...clamp.push(Buffer.from(text.slice(3), "latin1"), size),
      ]).toString("latin1");
    expect(pushed(`\x1b[5${";1".repeat(40)}m`)).toBe(`\x1b[5${";1".repeat(31)}m`);
    expect(pushed(`\x1b[5${":01".repeat(40)};2m`)).toBe(`\x1b[5${":1".repeat(32)};2m`);
    expect(pushed(`\x1b[${"9".repeat(30)};0000;;:m`)).toBe(`\x1b[${2 ** 31 - 1};0;;:m`);
  });

  it("hands xterm 'x ESC[999999999b' with the count clamped (regression: 124 s and 3.8 GB in xterm)", () => {
    const emulator = new ScreenEmulator(80, 24);
    // Recorded, not parsed: the bytes xterm would get.
    const seen: Buffer[] = [];
    const term = (emulator as unknown as { term: { write: (data: Uint8Array, done: () => void) => void } }).term;
    term.write = (data, done) => {
      seen.push(Buffer.from(data));
      done();
    };
    emulator.write(Buffer.from("x\x1b[999999999b\x1b[999999999L\x1b[999999999S\x1b[999999999Z"));
    expect(Buffer.concat(seen).toString()).toBe(
      `x\x1b[${82_080 + ((999_999_999 - 82_080) % 80)}b\x1b[24L\x1b[24S\x1b[80Z`,
    );
    emulator.dispose();
  });

  it("keeps a PTY's screen answering under 'x ESC[999999999b' repeated, the screen thread's heap flat (regression: 124 s and 3.8 GB each)", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const before = await gw.core.screens.memory();
    const rss = process.memoryUsage().rss;
    const attack =
      "for i in $(seq 1 50); do printf 'x\\033[999999999b\\033[999999999L'; done; printf '\\033[Hdone'; sleep 30";
    const { json } = await http.post("/v1/sessions", { command: ["sh", "-c", attack], pty: true, cols: 80, rows: 24 });
    await waitFor(
      async () => (await http.get(`/v1/sessions/${json.id}/output`)).text.includes("done"),
      10_000,
      "output",
    );
    const started = Date.now();
    const screen = await waitFor(
      async () => {
        const r = await http.get(`/v1/sessions/${json.id}/screen`);
        return r.status === 200 && r.json.screen.startsWith("done") ? r.json : undefined;
      },
      20_000,
      "the screen after the attack",
    );
    expect(Date.now() - started).toBeLessThan(20_000);
    // The last REP filled the screen with x; IL then blanked the cursor's row, the last one.
    expect(screen.screen).toBe(["done" + "x".repeat(76), ...Array(22).fill("x".repeat(80))].join("\n"));
    expect(screen.cursor).toEqual({ x: 4, y: 0, visible: true });
    const after = await gw.core.screens.memory();
    expect(after.heapUsed - before.heapUsed).toBeLessThan(64 * 1024 * 1024);
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * 1024 * 1024);
  }, 60_000);
});
