import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReplayBuffer, TerminalModes } from "../../web/src/replay-buffer.js";
import type { ReplayItem } from "../../web/src/replay-buffer.js";

const text = (t: string): ReplayItem => ({ kind: "text", text: t });
const joined = (items: ReplayItem[]) => items.map((i) => (i.kind === "text" ? i.text : "")).join("");

describe("ReplayBuffer (a terminal page's replay)", () => {
  it("gives a replay under the full size back whole and in order, resizes included", () => {
    const buffer = new ReplayBuffer(100, 40);
    const items: ReplayItem[] = [text("a\r\n"), { kind: "resize", cols: 90, rows: 30 }, text("b\r\n")];
    for (const item of items) buffer.push(item);
    expect(buffer.drain()).toEqual(items);
    expect(buffer.drain()).toEqual([]);
  });

  it("past the full size keeps the tail from a line start, after the last size, the modes and a note", () => {
    const buffer = new ReplayBuffer(100, 40);
    buffer.push(text("\x1b[?25l\x1b[?2004h"));
    buffer.push({ kind: "resize", cols: 100, rows: 40 });
    for (let i = 0; i < 30; i++) buffer.push(text(`line${String(i).padStart(2, "0")}\n`));
    const out = buffer.drain();
    expect(out[0]).toEqual({ kind: "resize", cols: 100, rows: 40 });
    const written = joined(out);
    expect(written.startsWith("\x1b[0m\x1b[?25l\x1b[?2004h\x1b[2m[… ")).toBe(true);
    expect(written).toContain("of earlier output not shown");
    // The tail: whole lines only, the last ones, about the tail size.
    const lines = written
      .slice(written.indexOf("\r\n") + 2)
      .split("\n")
      .filter(Boolean);
    expect(lines.at(-1)).toBe("line29");
    expect(lines.every((l) => /^line\d\d$/.test(l))).toBe(true);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(lines.length).toBeLessThanOrEqual(8);
  });

  it("keeps no more lines than the page's scrollback, however short they are", () => {
    const buffer = new ReplayBuffer(100, 80, 3);
    buffer.push(text("\x1b[?2004h"));
    for (let i = 0; i < 40; i++) buffer.push(text(`${i % 10}\n`));
    const written = joined(buffer.drain());
    const prefix = "\x1b[0m\x1b[?2004h\x1b[2m";
    expect(written.startsWith(prefix)).toBe(true);
    expect(written.slice(prefix.length)).toMatch(/^\[… \d+ bytes of earlier output not shown/);
    expect(written.slice(written.indexOf("\r\n") + 2)).toBe("7\n8\n9\n");
  });

  it("brings a full-screen program back on its alternate screen, without a note in its way", () => {
    const buffer = new ReplayBuffer(50, 20);
    buffer.push(text("shell$ vim\r\n\x1b[?1049h\x1b[?1h\x1b="));
    for (let i = 0; i < 20; i++) buffer.push(text(`\x1b[${i + 1};1Hrow ${i}\n`));
    const written = joined(buffer.drain());
    expect(written.startsWith("\x1b[0m\x1b[?1049h\x1b[?1h\x1b=")).toBe(true);
    expect(written).not.toContain("not shown");
  });

  it("cuts a replay without newlines at an escape sequence, finishing a sequence the cut split", () => {
    const buffer = new ReplayBuffer(100, 60);
    buffer.push(text("x".repeat(60) + "\x1b[?104"));
    buffer.push(text("9h\x1b[Hscreen one\x1b[1mstatus"));
    buffer.push(text("\x1b[Hscreen two\x1b[1mstatus"));
    buffer.push(text("\x1b[Hscreen three\x1b[1mstatus"));
    // The alternate screen the split sequence switched to comes first; no stray "9h", no note.
    expect(joined(buffer.drain())).toBe(
      "\x1b[0m\x1b[?1049h" +
        "\x1b[Hscreen one\x1b[1mstatus\x1b[Hscreen two\x1b[1mstatus\x1b[Hscreen three\x1b[1mstatus",
    );
  });

  it("keeps at most about the tail in memory however long the replay", () => {
    const buffer = new ReplayBuffer(1000, 200);
    for (let i = 0; i < 100_000; i++) buffer.push(text("y\n"));
    const written = joined(buffer.drain());
    expect(written.length).toBeLessThan(400);
  });
});

describe("TerminalModes", () => {
  it("finds mode changes however the output is cut into chunks (property)", () => {
    const stream = "a\x1b[?1049hb\x1b[?25l\x1b[?1000;1006hc\x1b>d\x1b[?1049le\x1b[?2004h";
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 8 }), (cuts) => {
        const modes = new TerminalModes();
        let at = 0;
        for (const cut of [...cuts].sort((x, y) => x - y)) {
          modes.scan(stream.slice(at, cut));
          at = cut;
        }
        modes.scan(stream.slice(at));
        expect(modes.prefix()).toBe("\x1b[?1049l\x1b[?25l\x1b[?1000h\x1b[?1006h\x1b[?2004h\x1b>");
        expect(modes.alternateScreen).toBe(false);
      }),
    );
  });

  it("forgets everything on a full reset (ESC c)", () => {
    const modes = new TerminalModes();
    modes.scan("\x1b[?1049h\x1b=\x1bc");
    expect(modes.prefix()).toBe("");
  });
});
