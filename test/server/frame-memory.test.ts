/**
 * Frames that are views of reusable memory (a pooled output piece, see FrameMemory): the
 * outbox keeps that memory while `ws` may still read it — until each send's callback — and
 * ends the hold a frame was handed over with once it is written; LastFrame keeps one of its
 * own for the frame it caches.
 */
import type { WebSocket } from "ws";
import { describe, expect, it } from "vitest";
import type { LogEntry } from "../../src/log/types.js";
import { BinaryFrame, FRAME_POOL_MIN_BYTES, LastFrame, framedIn } from "../../src/server/ws/outbound-frames.js";
import type { Frame, FrameMemory } from "../../src/server/ws/outbound-frames.js";
import { Outbox } from "../../src/server/ws/ws-common.js";
import { WIRE_FRAME_MAX_BYTES, WireFrame } from "../../src/server/ws/wire-frame.js";

/** Counts holds; `freed` once they are all released. */
class Memory implements FrameMemory {
  holds = 1; // the builder's, handed over with the frame
  freed = false;
  hold(): void {
    if (this.freed) throw new Error("held after it was freed");
    this.holds++;
  }
  release(): void {
    if (--this.holds === 0) this.freed = true;
    if (this.holds < 0) throw new Error("released more often than held");
  }
}

/** A socket whose sends complete only when the test says so. */
function fakeSocket() {
  const callbacks: Array<(error?: Error) => void> = [];
  const ws = {
    OPEN: 1,
    readyState: 1,
    send: (_data: unknown, _options: unknown, cb: (error?: Error) => void) => callbacks.push(cb),
    pause: () => {},
    resume: () => {},
  };
  return { ws: ws as unknown as WebSocket, callbacks };
}

const entry = (seq: number): LogEntry => ({ seq, type: "custom", json: "{}", size: 2 });

describe("frames that are views of reusable memory", () => {
  it("stay held until every send of them completed, and the builder's hold ends once written", () => {
    const { ws, callbacks } = fakeSocket();
    const memory = new Memory();
    const frame = framedIn(new BinaryFrame(Buffer.alloc(16)), memory);
    const outbox = new Outbox(
      ws,
      1 << 20,
      () => {},
      () => frame,
    );
    outbox.deliver("s", [entry(1)], true);
    // Written: the builder's hold is over, the send's is not.
    expect(callbacks).toHaveLength(1);
    expect(memory.holds).toBe(1);
    expect(memory.freed).toBe(false);
    callbacks[0]!();
    expect(memory.freed).toBe(true);
  });

  it("a frame LastFrame caches for many connections is freed only after the next entry's frame and every send", () => {
    // Larger than what LastFrame copies into a message encoded for the wire.
    const sockets = [fakeSocket(), fakeSocket()];
    const cache = new LastFrame<Frame>();
    const memories: Memory[] = [];
    const build = (): Frame => {
      const m = new Memory();
      memories.push(m);
      return framedIn(Buffer.alloc(WIRE_FRAME_MAX_BYTES + 1), m);
    };
    const outboxes = sockets.map(
      ({ ws }) =>
        new Outbox(
          ws,
          1 << 20,
          () => {},
          (_s, es) => cache.get(es[0]!, build),
        ),
    );
    const first = entry(1);
    for (const o of outboxes) o.deliver("s", [first], true);
    expect(memories).toHaveLength(1); // built once for both
    for (const { callbacks } of sockets) callbacks.shift()!();
    // Sent on both; the cache still has it.
    expect(memories[0]!.freed).toBe(false);
    outboxes[0]!.deliver("s", [entry(2)], true);
    expect(memories).toHaveLength(2);
    expect(memories[0]!.freed).toBe(true);
    expect(memories[1]!.freed).toBe(false);
  });

  it("a small frame LastFrame shares is copied into one encoded message and its memory freed at once", () => {
    const { ws, callbacks } = fakeSocket();
    const cache = new LastFrame<Frame>();
    const memory = new Memory();
    const frame = cache.get(entry(1), () => framedIn(Buffer.from("hello"), memory));
    expect(frame).toBeInstanceOf(WireFrame);
    expect(memory.freed).toBe(true);
    // A socket `ws` does not show (this fake has none) gets the payload through `ws.send`.
    const sent: unknown[] = [];
    (ws as unknown as { send: (d: unknown, o: unknown, cb: () => void) => void }).send = (data, _o, cb) => {
      sent.push(data);
      callbacks.push(cb);
    };
    new Outbox(
      ws,
      1 << 20,
      () => {},
      () => frame,
    ).deliver("s", [entry(1)], true);
    expect(sent.map((d) => Buffer.from(d as Uint8Array).toString())).toEqual(["hello"]);
  });

  it("a frame in reused memory of a pool's size is shared as it is, not copied (no fresh memory per event)", () => {
    const cache = new LastFrame<Frame>();
    const memory = new Memory();
    const pooled = framedIn(Buffer.alloc(FRAME_POOL_MIN_BYTES), memory);
    expect(cache.get(entry(1), () => pooled)).toBe(pooled);
    expect(memory.freed).toBe(false);
    // Without reused memory, a frame of that size is encoded once for every connection.
    expect(cache.get(entry(2), () => Buffer.alloc(FRAME_POOL_MIN_BYTES))).toBeInstanceOf(WireFrame);
  });

  /** An outbox whose every frame is a view of `memory`. */
  const outboxFramingIn = (ws: ReturnType<typeof fakeSocket>["ws"], memory: Memory) =>
    new Outbox(
      ws,
      1 << 20,
      () => {},
      () => framedIn(Buffer.alloc(16), memory),
    );

  it("a send that fails (the socket is going away) still ends its hold", () => {
    const { ws, callbacks } = fakeSocket();
    const memory = new Memory();
    const outbox = outboxFramingIn(ws, memory);
    outbox.deliver("s", [entry(1)], true);
    callbacks[0]!(new Error("socket closed"));
    expect(memory.freed).toBe(true);
  });

  it("a frame for a socket that is not open is never sent, and its builder's hold ends", () => {
    const { ws, callbacks } = fakeSocket();
    (ws as unknown as { readyState: number }).readyState = 3;
    const memory = new Memory();
    const outbox = outboxFramingIn(ws, memory);
    outbox.deliver("s", [entry(1)], true);
    expect(callbacks).toHaveLength(0);
    expect(memory.freed).toBe(true);
  });
});
