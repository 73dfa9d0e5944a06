import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { LOG_FLUSH_TIMEOUT_MS, LOG_QUEUE_MAX_BYTES, LogDestination } from "../../src/system/log-destination.js";

/** A stream nobody reads until the test does: what it holds counts as queued (writableLength). */
function unread(): PassThrough {
  return new PassThrough({ highWaterMark: 1024, readableHighWaterMark: 1024 });
}

const LINE = `${JSON.stringify({ level: 30, msg: "x".repeat(1000) })}\n`;

describe("the gateway's log destination", () => {
  it("keeps at most LOG_QUEUE_MAX_BYTES for a reader that does not read, then says how many lines it dropped", async () => {
    const out = unread();
    const log = new LogDestination(out);
    const lines = Math.ceil((2 * LOG_QUEUE_MAX_BYTES) / LINE.length);
    for (let i = 0; i < lines; i++) log.write(LINE);
    expect(out.writableLength).toBeLessThanOrEqual(LOG_QUEUE_MAX_BYTES);
    expect(out.writableLength).toBeGreaterThan(LOG_QUEUE_MAX_BYTES - LINE.length);

    // Read everything: the next line comes after a note of what was dropped.
    let text = "";
    out.on("data", (d: Buffer) => (text += d.toString()));
    await new Promise((resolve) => log.flush(resolve));
    log.write(`${JSON.stringify({ msg: "after" })}\n`);
    await new Promise((resolve) => setImmediate(resolve));
    const written = text.split("\n").filter((l) => l !== "");
    const note = JSON.parse(written.at(-2)!) as { dropped: number; msg: string };
    const kept = written.length - 2;
    expect(note.dropped).toBe(lines - kept);
    expect(note.msg).toMatch(/log lines were dropped: stderr was not read/);
    expect(JSON.parse(written.at(-1)!)).toEqual({ msg: "after" });
  });

  it("flushes within LOG_FLUSH_TIMEOUT_MS when nobody reads, and at once after the output failed", async () => {
    const out = unread();
    const log = new LogDestination(out);
    for (let i = 0; i < 100; i++) log.write(LINE);
    let started = Date.now();
    await new Promise((resolve) => log.flush(resolve));
    expect(Date.now() - started).toBeGreaterThanOrEqual(LOG_FLUSH_TIMEOUT_MS - 50);
    expect(Date.now() - started).toBeLessThan(LOG_FLUSH_TIMEOUT_MS + 1_000);

    out.destroy(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    await new Promise((resolve) => setImmediate(resolve));
    log.write(LINE); // dropped, without a throw
    started = Date.now();
    await new Promise((resolve) => log.flush(resolve));
    expect(Date.now() - started).toBeLessThan(100);
  });

  it("listens for a stream's failure once however many destinations write to it, and each stops after it", async () => {
    const out = unread();
    let text = "";
    out.on("data", (d: Buffer) => (text += d.toString()));
    const before = out.listenerCount("error");
    // As the gateways a process starts one after another, each with its logger on stderr.
    const logs = Array.from({ length: 20 }, () => new LogDestination(out));
    expect(out.listenerCount("error")).toBe(before + 1);
    logs[19]!.write(`${JSON.stringify({ msg: "before" })}\n`);
    await new Promise((resolve) => setImmediate(resolve));
    expect(text).toBe(`${JSON.stringify({ msg: "before" })}\n`);

    out.emit("error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    for (const log of logs) log.write(LINE);
    await new Promise((resolve) => setImmediate(resolve));
    expect(text).toBe(`${JSON.stringify({ msg: "before" })}\n`);
    // One made later on the failed stream knows it too.
    new LogDestination(out).write(LINE);
    await new Promise((resolve) => setImmediate(resolve));
    expect(text).not.toContain("xxx");
  });
});
