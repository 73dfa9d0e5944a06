import { describe, expect, it } from "vitest";
import { Scanner } from "../../src/mcp/output-scanner.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const byteLength = (s: string) => bytes(s).length;

describe("Scanner", () => {
  // Regression (exploratory test): `end` was the end of the 16 KiB step the match was found in,
  // so a wait for "BUILD OK" returned (and moved next past) the lines after it in the same
  // write, and a wait for "^tests: " from there never saw them.
  it("ends a match's answer after the line the match ends on, not after everything that came with it", () => {
    const burst = "building\nBUILD OK\ntests: 3 passed\n$ ";
    const scanner = new Scanner(/BUILD OK/m, false, 0);
    expect(scanner.push(0, bytes(burst))).toEqual({ match: "BUILD OK", end: 18, lineOffset: 9 });

    // From there, the rest is found.
    const rest = new Scanner(/^tests: .*\n/m, false, 18);
    expect(rest.push(18, bytes(burst).subarray(18))).toMatchObject({ match: "tests: 3 passed\n", end: 34 });
  });

  it("counts the end in bytes, past multi-byte characters and escape sequences the text leaves out", () => {
    const line = "\x1b[1;32m✓ héllo\x1b[0m BUILD OK 😀\x1b[0m\r\n";
    const burst = `${"€".repeat(10)}\n${line}tests: 3 passed\n`;
    const at = byteLength(`${"€".repeat(10)}\n`);
    for (const raw of [false, true]) {
      const scanner = new Scanner(/BUILD OK/m, raw, 100);
      expect(scanner.push(100, bytes(burst)), `raw ${raw}`).toEqual({
        match: "BUILD OK",
        end: 100 + at + byteLength(line),
        lineOffset: 100 + at,
      });
    }
  });

  it("ends after what arrived when the line the match ends on has not ended yet", () => {
    const scanner = new Scanner(/\$ $/m, false, 0);
    expect(scanner.push(0, bytes("done\n$ "))).toMatchObject({ match: "$ ", end: 7 });
  });

  it("finds the line end past a line break an escape sequence hides from the text", () => {
    // The OSC holds a line break: the text has one line break fewer than the bytes before it.
    const burst = "a\x1b]0;two\nlines\x07b\nBUILD OK\nafter\n";
    const scanner = new Scanner(/BUILD OK/m, false, 0);
    const found = scanner.push(0, bytes(burst))!;
    expect(found.end).toBeGreaterThanOrEqual(burst.indexOf("BUILD OK") + 9);
  });

  it("finds a match early in a big write and ends the answer at its line", () => {
    const head = "listening on 3000\n";
    let burst = head;
    for (let i = 1; i <= 20_000; i++) burst += `${i}\n`;
    const scanner = new Scanner(/listening on/m, false, 0);
    expect(scanner.push(0, bytes(burst))).toEqual({ match: "listening on", end: head.length, lineOffset: 0 });
    const middle = new Scanner(/^15000$/m, false, 0);
    const before = burst.indexOf("\n15000\n") + 1;
    expect(middle.push(0, bytes(burst))).toEqual({ match: "15000", end: before + 6, lineOffset: before });
  });
});
