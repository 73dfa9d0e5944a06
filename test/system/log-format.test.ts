/**
 * The gateway's log reads as lines for people on a terminal and as pino's JSON elsewhere
 * (src/system/log-format.ts).
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { LogDestination } from "../../src/system/log-destination.js";
import { logFormatFromEnv, prettyLogLine } from "../../src/system/log-format.js";

describe("log lines for people", () => {
  it("shows time, level, message and the other fields; an error's stack below; JSON that is not pino's as it came", () => {
    const time = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();
    const line = JSON.stringify({
      level: 40,
      time,
      pid: 1234,
      hostname: "box",
      service: "switchboard",
      sessionId: "abc",
      kept: 2,
      why: "two words",
      tags: ["a", "b"],
      msg: "stopping: 2 sessions keep running",
    });
    expect(prettyLogLine(`${line}\n`, { colour: false })).toBe(
      '03:04:05.067 WARN  stopping: 2 sessions keep running sessionId=abc kept=2 why="two words" tags=["a","b"]\n',
    );
    expect(prettyLogLine(`${line}\n`, { colour: true })).toContain("\u001b[33mWARN \u001b[0m");
    const error = JSON.stringify({
      level: 50,
      time,
      msg: "bug",
      err: { type: "Error", message: "boom", stack: "Error: boom\n    at f (a.js:1:2)\n    at g (b.js:3:4)" },
    });
    expect(prettyLogLine(error, { colour: false })).toBe(
      '03:04:05.067 ERROR bug err="boom"\n    at f (a.js:1:2)\n    at g (b.js:3:4)\n',
    );
    expect(prettyLogLine("not json\n", { colour: false })).toBe("not json\n");
  });

  it("is chosen by a terminal on stderr unless SWITCHBOARD_LOG_FORMAT says; the destination writes it", () => {
    expect(logFormatFromEnv({}, true)).toBe("pretty");
    expect(logFormatFromEnv({}, false)).toBe("json");
    expect(logFormatFromEnv({ SWITCHBOARD_LOG_FORMAT: "" }, true)).toBe("pretty");
    expect(logFormatFromEnv({ SWITCHBOARD_LOG_FORMAT: "json" }, true)).toBe("json");
    expect(logFormatFromEnv({ SWITCHBOARD_LOG_FORMAT: "pretty" }, false)).toBe("pretty");
    const out = new PassThrough();
    let written = "";
    out.on("data", (d: Buffer) => (written += d.toString()));
    new LogDestination(out, { format: "pretty" }).write(
      `${JSON.stringify({ level: 30, time: 0, msg: "gateway listening", url: "http://127.0.0.1:1" })}\n`,
    );
    expect(written).toMatch(/^\d\d:\d\d:\d\d\.000 INFO {2}gateway listening url=http:\/\/127\.0\.0\.1:1\n$/);
    const json = `${JSON.stringify({ level: 30, time: 0, msg: "x" })}\n`;
    written = "";
    new LogDestination(out).write(json);
    expect(written).toBe(json);
  });
});
