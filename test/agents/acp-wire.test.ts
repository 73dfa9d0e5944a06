import type { AnyMessage, Stream } from "@agentclientprotocol/sdk";
import { describe, expect, it } from "vitest";
import { AcpWire } from "../../src/agents/acp-wire.js";
import { sleep } from "../helpers/sleep.js";

/** A raw stream pair the test plays the agent on: `push` is the agent's stdout, `sent` what we wrote. */
function rawPair(): { raw: Stream; push: (m: object) => void; end: () => void; sent: AnyMessage[] } {
  let controller!: ReadableStreamDefaultController<AnyMessage>;
  const readable = new ReadableStream<AnyMessage>({ start: (c) => void (controller = c) });
  const sent: AnyMessage[] = [];
  const writable = new WritableStream<AnyMessage>({ write: (m) => void sent.push(m) });
  return {
    raw: { readable, writable },
    push: (m) => controller.enqueue(m as AnyMessage),
    end: () => controller.close(),
    sent,
  };
}

const update = (n: number): object => ({ jsonrpc: "2.0", method: "session/update", params: { n } });

/**
 * Plays the SDK: reads the wire's output continuously, as the SDK's receive loop does (the
 * transform only runs while someone reads), and handles messages whenever the test says.
 */
function setup(): {
  wire: AcpWire;
  applied: string[];
  push: (m: object) => void;
  end: () => void;
  sdkSees: AnyMessage[];
  closed: Promise<void>;
  writer: WritableStreamDefaultWriter<AnyMessage>;
} {
  const { raw, push, end } = rawPair();
  const applied: string[] = [];
  const wire = new AcpWire(
    raw,
    {
      update: (params) => applied.push(`update:${(params as { n: number }).n}`),
      response: (m) => applied.push(`response:${String(m.id)}`),
      end: () => applied.push("end"),
      failed: (err) => applied.push(`failed:${String(err)}`),
    },
    { watchResponsesTo: ["session/prompt"] },
  );
  const sdkSees: AnyMessage[] = [];
  const closed = wire.stream.readable.pipeTo(new WritableStream({ write: (m) => void sdkSees.push(m) }));
  return { wire, applied, push, end, sdkSees, closed, writer: wire.stream.writable.getWriter() };
}

describe("AcpWire", () => {
  it("a request handler that enters late still applies its events before the messages after it", async () => {
    const w = setup();
    await w.writer.write({ jsonrpc: "2.0", id: 99, method: "session/prompt", params: {} });
    w.push(update(1));
    w.push({ jsonrpc: "2.0", id: 7, method: "session/request_permission", params: {} });
    w.push(update(2));
    w.push({ jsonrpc: "2.0", id: 99, result: { stopReason: "end_turn" } });
    await sleep(30);
    // The SDK saw the request and the response (updates never reach it)…
    expect(w.sdkSees).toEqual([
      expect.objectContaining({ id: 7, method: "session/request_permission" }),
      expect.objectContaining({ id: 99, result: { stopReason: "end_turn" } }),
    ]);
    // …but nothing after the request is applied before its handler has had its turn.
    expect(w.applied).toEqual(["update:1"]);
    // …and its handler gets around to the request only now.
    const release = await w.wire.enter(7);
    w.applied.push("permission.request");
    release();
    expect(w.applied).toEqual(["update:1", "permission.request", "update:2", "response:99"]);
    expect(w.wire.received).toBe(4);
  });

  it("a request the SDK answers without a handler releases its place when the answer goes out", async () => {
    const w = setup();
    w.push({ jsonrpc: "2.0", id: "x", method: "bogus/method", params: {} });
    w.push(update(1));
    await sleep(10);
    expect(w.applied).toEqual([]);
    await w.writer.write({ jsonrpc: "2.0", id: "x", error: { code: -32601, message: "Method not found" } });
    expect(w.applied).toEqual(["update:1"]);
  });

  it("applies the end of the output after everything before it, once, even when closed again", async () => {
    const w = setup();
    w.push(update(1));
    w.push(update(2));
    w.end();
    await w.closed;
    w.wire.close();
    expect(w.applied).toEqual(["update:1", "update:2", "end"]);
  });

  it("close releases requests whose handlers will never run, so the end is not stuck behind them", async () => {
    const w = setup();
    w.push({ jsonrpc: "2.0", id: 1, method: "fs/read_text_file", params: {} });
    w.push(update(1));
    await sleep(10);
    expect(w.applied).toEqual([]);
    w.wire.close();
    expect(w.applied).toEqual(["update:1", "end"]);
  });
});
