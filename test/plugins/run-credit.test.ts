import { describe, expect, it } from "vitest";
import { RunCredit, type RunRoom } from "../../src/plugins/run-credit.js";

const WINDOW = 1000;
const FRAME = 100;

/** A credit whose log room the test switches, recording acks and holds in order. */
function credit() {
  const seen: string[] = [];
  let wait: { promise: Promise<void>; resolve: () => void } | undefined;
  const room: RunRoom = () => wait?.promise;
  const c = new RunCredit({
    windowChars: WINDOW,
    frameChars: FRAME,
    room,
    ack: (chars) => seen.push(`ack ${chars}`),
    onHold: (held) => seen.push(held ? "held" : "resumed"),
  });
  return {
    c,
    seen,
    full(): void {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      wait = { promise, resolve };
    },
    async room(): Promise<void> {
      const w = wait;
      wait = undefined;
      w?.resolve();
      await settle();
    },
  };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("a plugin agent run's credit (the host's side of its delta window)", () => {
  it("acks what it took in one ack per turn, while the log has room", async () => {
    const t = credit();
    expect(t.c.take(10)).toBe(true);
    expect(t.c.take(20)).toBe(true);
    expect(t.seen).toEqual([]);
    await settle();
    expect(t.seen).toEqual(["ack 30"]);
    expect(t.c.outstandingChars).toBe(0);
  });

  it("acks nothing while the log has no room, then everything it took at once; the hold is reported both ways", async () => {
    const t = credit();
    t.full();
    t.c.take(400);
    await settle();
    t.c.take(500);
    await settle();
    expect(t.seen).toEqual(["held"]);
    expect(t.c.outstandingChars).toBe(900);
    await t.room();
    expect(t.seen).toEqual(["held", "resumed", "ack 900"]);
    expect(t.c.outstandingChars).toBe(0);
  });

  it("after close, acks nothing more, even once the log has room again", async () => {
    const t = credit();
    t.full();
    t.c.take(10);
    await settle();
    t.c.close();
    await t.room();
    expect(t.seen).toEqual(["held"]);
  });

  it("reports a plugin that sends more than its window plus one frame without an ack", async () => {
    const t = credit();
    t.full();
    expect(t.c.take(WINDOW)).toBe(true);
    expect(t.c.take(FRAME)).toBe(true);
    expect(t.c.take(1)).toBe(false);
    expect(t.c.outstandingChars).toBe(WINDOW + FRAME + 1);
  });
});
