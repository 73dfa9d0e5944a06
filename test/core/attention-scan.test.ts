import { describe, expect, it } from "vitest";
import { AttentionScanner, MAX_OSC_PAYLOAD_BYTES } from "../../src/core/attention-scan.js";
import type { TerminalCall } from "../../src/core/attention-scan.js";

const bytes = (text: string): Uint8Array => Buffer.from(text, "utf8");

/** What `chunks`, scanned in order by one scanner, call for. */
function scan(...chunks: (string | Uint8Array)[]): TerminalCall[] {
  const calls: TerminalCall[] = [];
  const scanner = new AttentionScanner((call) => calls.push(call));
  for (const chunk of chunks) scanner.scan(typeof chunk === "string" ? bytes(chunk) : chunk);
  return calls;
}

/** The output split at every position: each split must find what the whole finds. */
function everySplit(text: string): TerminalCall[][] {
  const whole = bytes(text);
  const out: TerminalCall[][] = [];
  for (let i = 0; i <= whole.length; i++)
    for (let j = i; j <= whole.length; j++)
      out.push(scan(whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)));
  return out;
}

const bell: TerminalCall = { kind: "bell" };
const note = (text: string): TerminalCall => ({ kind: "notification", text });

describe("AttentionScanner", () => {
  it("finds a bare BEL, not the BEL that ends an OSC title or sits in a DCS string", () => {
    expect(scan("hello\x07world")).toEqual([bell]);
    expect(scan("\x1b]0;my title\x07prompt$ ")).toEqual([]);
    expect(scan("\x1bPtmux;\x07data\x1b\\after")).toEqual([]);
    expect(scan("\x1b[31mred\x1b[0m\x07")).toEqual([bell]);
    expect(scan("\x07\x07")).toEqual([bell, bell]);
  });

  it("reads OSC 9 and OSC 777 notifications ended by BEL or ST, and skips OSC 9;4 progress", () => {
    expect(scan("\x1b]9;Build done\x07")).toEqual([note("Build done")]);
    expect(scan("\x1b]9;Tests passed\x1b\\")).toEqual([note("Tests passed")]);
    expect(scan("\x1b]777;notify;Claude;Needs your input\x07")).toEqual([note("Claude: Needs your input")]);
    expect(scan("\x1b]777;notify;Only a title\x1b\\")).toEqual([note("Only a title")]);
    expect(scan("\x1b]9;4;1;50\x07")).toEqual([]);
    expect(scan("\x1b]99;something else\x07\x1b]52;c;aGk=\x07")).toEqual([]);
  });

  it("finds the same whatever the output is split into (sequences across chunks)", () => {
    const text = "a\x1b]0;t\x07b\x07c\x1b]9;héllo\x1b\\d\x1bPq\x07\x1b\\e\x1b]777;notify;T;B\x07";
    const expected = [bell, note("héllo"), note("T: B")];
    expect(scan(text)).toEqual(expected);
    for (const calls of everySplit(text)) expect(calls).toEqual(expected);
  });

  it("an ESC inside an OSC string ends it: a later BEL is a bell", () => {
    expect(scan("\x1b]0;unfinished", "\x1b[m", "\x07")).toEqual([bell]);
  });

  it("keeps at most MAX_OSC_PAYLOAD_BYTES of a long OSC string, and its BEL is not a bell", () => {
    const long = "x".repeat(MAX_OSC_PAYLOAD_BYTES * 3);
    expect(scan(`\x1b]52;c;${long}`, long, "\x07")).toEqual([]);
    const calls = scan(`\x1b]9;${long}\x07`);
    expect(calls).toHaveLength(1);
    expect((calls[0] as { text: string }).text.length).toBe(MAX_OSC_PAYLOAD_BYTES - 2);
  });

  it("scan cost: coloured output without BEL costs a fraction of walking its bytes", () => {
    // Coloured lines, then plain text after the last ESC (which the scan must not walk).
    const chunk = bytes(`${"\x1b[32mok\x1b[0m some output line\r\n".repeat(1000)}${"plain text ".repeat(3000)}`);
    const scanner = new AttentionScanner(() => {
      throw new Error("no call expected");
    });
    let escapes = 0;
    const walkBytes = (): void => {
      for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x1b) escapes++;
    };
    // The fastest of a few batches each: the machine is shared, and a batch may be descheduled.
    const fastest = (fn: () => void): number => {
      let best = Infinity;
      for (let batch = 0; batch < 5; batch++) {
        const start = process.hrtime.bigint();
        for (let i = 0; i < 50; i++) fn();
        best = Math.min(best, Number(process.hrtime.bigint() - start));
      }
      return best;
    };
    fastest(() => scanner.scan(chunk));
    fastest(walkBytes);
    const scanned = fastest(() => scanner.scan(chunk));
    const walked = fastest(walkBytes);
    expect(escapes).toBeGreaterThan(0);
    expect(scanned).toBeLessThan(walked / 3);
  });
});
