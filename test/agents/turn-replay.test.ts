import fc from "fast-check";
import type { AnyMessage } from "@agentclientprotocol/sdk";
import { describe, expect, it } from "vitest";
import { AcpLineReader } from "../../src/agents/acp-line-reader.js";
import { HELD_TURN_VERSION, nextIdBase, readKeptTurn, REQUEST_ID_BLOCK } from "../../src/agents/held-turn.js";
import { MemoryLog } from "../../src/agents/memory-log.js";
import { TurnReplay } from "../../src/agents/turn-replay.js";

/** `text` cut at `cuts` (positions), in order. */
function split(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let from = 0;
  for (const c of at) {
    pieces.push(text.slice(from, c));
    from = c;
  }
  pieces.push(text.slice(from));
  return pieces.filter((p) => p !== "");
}

describe("TurnReplay", () => {
  it("drops text the log has however pacing cut it, and appends exactly the rest", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 60 }),
        fc.nat({ max: 60 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (text, loggedChars, loggedCuts, replayCuts) => {
          const logged = text.slice(0, Math.min(loggedChars, text.length));
          const log = new MemoryLog("s");
          for (const piece of split(logged, loggedCuts)) log.append({ type: "chat.delta", runId: "r", text: piece });
          const replay = new TurnReplay(log, log.events, "r");
          for (const piece of split(text, replayCuts)) replay.append({ type: "chat.delta", runId: "r", text: piece });
          const all = log.events.map((e) => (e.type === "chat.delta" ? e.text : "")).join("");
          expect(all).toBe(text);
          expect(replay.caughtUp).toBe(true);
        },
      ),
    );
  });

  it("drops other events by count in order, keeps a permission request's id and answers it as logged", () => {
    const log = new MemoryLog("s");
    log.append({ type: "tool", runId: "r", toolCallId: "t1", status: "in_progress" });
    log.append({
      type: "permission.request",
      runId: "r",
      requestId: "logged-id",
      title: "Go",
      options: [{ optionId: "yes", name: "Yes", kind: "allow_once" }],
      expiresAt: 1,
    });
    log.append({
      type: "permission.resolved",
      runId: "r",
      requestId: "logged-id",
      outcome: "selected",
      optionId: "yes",
      by: { name: "ann", role: "operator" },
    });
    const ahead = [...log.events];
    const replay = new TurnReplay(log, ahead, "r");
    expect(replay.caughtUp).toBe(false);
    replay.append({ type: "tool", runId: "r", toolCallId: "t1", status: "in_progress" });
    expect(replay.nextPermissionId()).toBe("logged-id");
    const request = replay.append({
      type: "permission.request",
      runId: "r",
      requestId: "logged-id",
      title: "Go",
      options: [{ optionId: "yes", name: "Yes", kind: "allow_once" }],
      expiresAt: 2,
    });
    expect(request.seq).toBe(2);
    expect(replay.loggedAnswer("logged-id")).toEqual({ optionId: "yes", by: { name: "ann", role: "operator" } });
    replay.append({
      type: "permission.resolved",
      runId: "r",
      requestId: "logged-id",
      outcome: "selected",
      optionId: "yes",
      by: { name: "ann", role: "operator" },
    });
    expect(replay.caughtUp).toBe(true);
    // Past what the log had: appended.
    replay.append({ type: "tool", runId: "r", toolCallId: "t1", status: "completed" });
    expect(log.events.map((e) => e.type)).toEqual(["tool", "permission.request", "permission.resolved", "tool"]);
  });

  it("expects again only the events of the run that goes on", () => {
    const log = new MemoryLog("s");
    log.append({ type: "chat.delta", runId: "before", text: "tail of the run before" });
    log.append({ type: "chat.final", runId: "before", text: "…", stopReason: "end_turn" });
    log.append({ type: "chat.delta", runId: "r", text: "ab" });
    const replay = new TurnReplay(log, [...log.events], "r");
    replay.append({ type: "chat.delta", runId: "r", text: "abc" });
    expect(replay.caughtUp).toBe(true);
    expect(log.events.at(-1)).toMatchObject({ type: "chat.delta", text: "c" });
  });

  it("skips the event of a request answered before the restart and not handled again", () => {
    const log = new MemoryLog("s");
    log.append({ type: "child", runId: "r", sessionId: "c1", command: ["ls"] });
    const replay = new TurnReplay(log, [...log.events], "r");
    replay.skip("child");
    expect(replay.caughtUp).toBe(true);
    replay.append({ type: "child", runId: "r", sessionId: "c2", command: ["ls"] });
    expect(log.events).toHaveLength(2);
  });
});

describe("AcpLineReader", () => {
  it("knows each message's end offset however the bytes are cut, a line cut in two read once", async () => {
    const lines = ['{"jsonrpc":"2.0","method":"a"}', "not json", '{"jsonrpc":"2.0","id":1,"result":{"é":"ü"}}', ""];
    const bytes = Buffer.from(lines.join("\n"));
    for (const cut of [1, 7, 31, 32, 40, bytes.length - 1]) {
      const reader = new AcpLineReader({ maxMessageBytes: 1024, base: () => 1000 });
      const out: Array<[AnyMessage, number | undefined]> = [];
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes.subarray(0, cut));
          controller.enqueue(bytes.subarray(cut));
          controller.close();
        },
      }).pipeThrough(reader.stream());
      const messages = stream.getReader();
      for (let next = await messages.read(); !next.done; next = await messages.read()) {
        out.push([next.value, reader.endOf(next.value)]);
      }
      const first = Buffer.byteLength(`${lines[0]}\n`);
      const third = first + Buffer.byteLength(`${lines[1]}\n${lines[2]}\n`);
      expect(out.map(([, end]) => end)).toEqual([1000 + first, 1000 + third]);
      expect(out.map(([m]) => ("method" in m ? m.method : "response"))).toEqual(["a", "response"]);
    }
  });
});

describe("the kept turn", () => {
  const turn = { v: HELD_TURN_VERSION, idBase: 5, cursor: { offset: 10, seq: 3 }, run: null, answered: [], mark: 0 };

  it("is read back in a version this build knows, refused in another, saying why", () => {
    expect(readKeptTurn(turn)).toEqual({ kind: "turn", turn });
    expect(readKeptTurn(undefined)).toBeUndefined();
    const other = readKeptTurn({ ...turn, v: 99 });
    expect(other?.kind).toBe("refused");
    expect(other?.kind === "refused" ? other.reason : "").toMatch(/version 99 .* version\(s\) 1/);
    expect(readKeptTurn({ ...turn, cursor: { offset: -1, seq: 0 } })?.kind).toBe("refused");
  });

  it("gives each connection ids past every earlier one's", () => {
    expect(nextIdBase(undefined, 0)).toBe(REQUEST_ID_BLOCK);
    expect(nextIdBase(5e15, 1)).toBe(5e15 + REQUEST_ID_BLOCK);
    expect(nextIdBase(REQUEST_ID_BLOCK, 1_700_000_000_000)).toBe(1_700_000_000_000_000);
  });
});
