import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/clock.js";
import { OutputCoalescer } from "../../src/core/output-coalescer.js";
import { decodedPiece } from "../helpers/pieces.js";
import type { DecodedPiece } from "../helpers/pieces.js";
import { decodeOutputData, UTF8_MIN_TEXT_RUN_BYTES } from "../../src/core/utf8-chunker.js";
import { spawnTerminalProcess } from "../../src/sessions/terminal-process.js";
import type { TerminalExit } from "../../src/sessions/process-transport.js";
import { TEST_ENV } from "./process-helpers.js";

/**
 * Regression test for docs/architecture.md, guarantee 3: exit only after the output tail.
 * Trusting node-pty's onExit, only 1–11 of 20 concurrent 200 KB PTY outputs arrived whole.
 */
const TAIL_PROCESSES_PER_MODE = 20;
const TAIL_BYTES = 200 * 1024;
/** Rounds of 40 concurrent processes per run, to make a rare loss show up. */
const TAIL_ROUNDS = 3;

let dir = "";
let payloadPath = "";
let payload = Buffer.alloc(0);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "switchboard-tail-"));
  payloadPath = join(dir, "payload");
  // Random bytes: invalid UTF-8, split characters and newlines all included.
  payload = randomBytes(TAIL_BYTES);
  writeFileSync(payloadPath, payload);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A terminal's output processing (OPOST|ONLCR) turns each \n into \r\n; nothing else changes. */
function throughPty(bytes: Buffer): Buffer {
  const out: number[] = [];
  for (const b of bytes) {
    if (b === 0x0a) out.push(0x0d);
    out.push(b);
  }
  return Buffer.from(out);
}

interface TailResult {
  exit: TerminalExit;
  raw: Buffer;
  rebuilt: Buffer;
  outputAfterExit: boolean;
  pieces: number;
  base64Pieces: number;
}

/** Runs `cat payload`, collecting raw chunks and, through chunker + coalescer, the decoded pieces. */
function runCat(pty: boolean): Promise<TailResult> {
  return new Promise((resolve, reject) => {
    const raw: Buffer[] = [];
    const pieces: DecodedPiece[] = [];
    const coalescer = new OutputCoalescer({ clock: systemClock, emit: (p) => pieces.push(decodedPiece(p)) });
    let exited = false;
    let outputAfterExit = false;
    try {
      spawnTerminalProcess({
        command: ["cat", payloadPath],
        cwd: dir,
        env: TEST_ENV,
        pty,
        onOutput: (stream, chunk) => {
          if (exited) outputAfterExit = true;
          raw.push(Buffer.from(chunk));
          coalescer.push(stream, chunk);
        },
        onExit: (exit) => {
          exited = true;
          coalescer.flush();
          coalescer.dispose();
          resolve({
            exit,
            raw: Buffer.concat(raw),
            rebuilt: Buffer.concat(pieces.map((p) => decodeOutputData(p.data, p.enc))),
            outputAfterExit,
            pieces: pieces.length,
            base64Pieces: pieces.filter((p) => p.enc === "base64").length,
          });
        },
      });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

describe("output tail before exit", () => {
  it(`delivers every byte before exit for ${TAIL_PROCESSES_PER_MODE} PTY and ${TAIL_PROCESSES_PER_MODE} pipe processes at once`, async () => {
    const expectedPty = throughPty(payload);
    for (let round = 0; round < TAIL_ROUNDS; round++) {
      const modes = Array.from({ length: TAIL_PROCESSES_PER_MODE * 2 }, (_, i) => i % 2 === 0);
      const results = await Promise.all(modes.map((pty) => runCat(pty)));
      const complete = results.filter((r, i) => {
        const expected = modes[i] ? expectedPty : payload;
        return (
          !r.outputAfterExit &&
          r.exit.exitCode === 0 &&
          r.exit.signal === null &&
          r.raw.equals(expected) &&
          r.rebuilt.equals(expected)
        );
      });
      const summary = results.map((r, i) => `${modes[i] ? "pty" : "pipe"}:${r.raw.length}/${r.rebuilt.length}`);
      expect(complete.length, `round ${round}: ${summary.join(" ")}`).toBe(results.length);
      // The random payload is mostly not UTF-8: the base64 path was exercised for real.
      expect(results.every((r) => r.base64Pieces > 0)).toBe(true);
    }
  });

  it.each([
    { name: "pipe", pty: false },
    { name: "pty", pty: true },
  ])("rebuilds mixed text and invalid bytes exactly through chunker and coalescer ($name)", async ({ pty }) => {
    const text = Buffer.from("héllo wörld 😀 ½ € — 漢字\n".repeat(3000));
    const mixed = Buffer.concat([text, Buffer.from([0xff, 0xc3, 0x28, 0xf0, 0x9f]), text]);
    writeFileSync(payloadPath + ".mixed", mixed);
    const result = await new Promise<{ rebuilt: Buffer; pieces: DecodedPiece[] }>((resolve) => {
      const pieces: DecodedPiece[] = [];
      const coalescer = new OutputCoalescer({ clock: systemClock, emit: (p) => pieces.push(decodedPiece(p)) });
      spawnTerminalProcess({
        command: ["cat", payloadPath + ".mixed"],
        cwd: dir,
        env: TEST_ENV,
        pty,
        onOutput: (stream, chunk) => coalescer.push(stream, chunk),
        onExit: () => {
          coalescer.flush();
          resolve({ rebuilt: Buffer.concat(pieces.map((p) => decodeOutputData(p.data, p.enc))), pieces });
        },
      });
    });
    expect(result.rebuilt.equals(pty ? throughPty(mixed) : mixed)).toBe(true);
    // Only the bad bytes (with the "(" among them, and any short text a piece boundary cut
    // next to them) travel as base64; every character arrives whole as text.
    const base64Bytes = result.pieces.filter((p) => p.enc === "base64").reduce((n, p) => n + p.byteLength, 0);
    expect(base64Bytes).toBeGreaterThanOrEqual(5);
    expect(base64Bytes).toBeLessThan(5 + 2 * UTF8_MIN_TEXT_RUN_BYTES);
    const allText = result.pieces
      .filter((p) => p.enc === undefined)
      .map((p) => p.data)
      .join("");
    expect(allText.split("😀").length - 1).toBe(6000);
    expect(allText).not.toContain("\ufffd");
    let offset = 0;
    for (const p of result.pieces) {
      expect(p.offset).toBe(offset);
      offset += p.byteLength;
    }
  });
});
