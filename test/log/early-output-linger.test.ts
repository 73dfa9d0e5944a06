/**
 * Output shown before its commit (a held session's, SessionLog.showOutputEarly) that nobody waits
 * to see committed lingers for company (LOG_INPUT_LINGER_MS), so that a held echo's commit runs
 * after its viewer woke, not beside it; whoever waits for published entries (a viewer that does not
 * follow the output early, a publish waiter) gets it committed at the end of the tick, as before.
 */
import { describe, expect, it, vi } from "vitest";
import { LOG_INPUT_LINGER_MS } from "../../src/log/commit-limits.js";
import type { SessionLog } from "../../src/log/index.js";
import type { NewEvent } from "../../src/protocol/index.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";
import { openLog } from "./helpers.js";

const endOfTick = () => new Promise<void>((resolve) => queueMicrotask(resolve));
const key = (log: SessionLog) => log.appendOutputBytes("pty", Buffer.from("x"), false).seq;

/** A `/ws/session` viewer of a held session: subscribed, and told of output early (as SessionFeed is). */
function earlyViewer(log: SessionLog): () => void {
  const stop = log.subscribe(() => {});
  const stopEarly = log.subscribeEarly(() => {});
  return () => {
    stopEarly();
    stop();
  };
}

function heldLog(): SessionLog {
  const log = openLog(tempDir()).create("s");
  expect(log.showOutputEarly()).toBe(true);
  return log;
}

describe("output shown before its commit", () => {
  it("lingers for its commit while only early viewers and background listeners follow the log, then is committed", async () => {
    const log = heldLog();
    earlyViewer(log);
    log.subscribe(() => {}, { background: true });
    const seq = key(log);
    const appended = performance.now();
    await endOfTick();
    expect(log.head).toBe(seq - 1);
    await waitFor(() => log.head === seq, 5_000, "the lingering output's commit");
    expect(performance.now() - appended).toBeGreaterThanOrEqual(LOG_INPUT_LINGER_MS - 0.5);
  });

  it("is committed at the end of the tick while a viewer that waits for commits follows the log (/v1/ws, SSE)", async () => {
    const log = heldLog();
    earlyViewer(log);
    const stop = log.subscribe(() => {});
    const seq = key(log);
    await endOfTick();
    expect(log.head).toBe(seq);

    // That viewer gone, the next output lingers again.
    stop();
    const next = key(log);
    await endOfTick();
    expect(log.head).toBe(next - 1);
  });

  it("lingering, is committed at the end of the tick once such a viewer subscribes, or someone waits for it to be published", async () => {
    const log = heldLog();
    earlyViewer(log);
    const first = key(log);
    await endOfTick();
    expect(log.head).toBe(first - 1);
    const stop = log.subscribe(() => {});
    await endOfTick();
    expect(log.head).toBe(first);
    stop();

    const second = key(log);
    await endOfTick();
    expect(log.head).toBe(second - 1);
    let published = false;
    log.afterPublished(second, log.drops, (refusal) => {
      expect(refusal).toBeUndefined();
      published = true;
    });
    await endOfTick();
    expect(log.head).toBe(second);
    expect(published).toBe(true);
  });

  it("a held key's input and its echo are committed together, with no linger left to wake the loop after", async () => {
    const log = heldLog();
    earlyViewer(log);
    log.subscribe(() => {}, { background: true });
    // Timers armed from here on (a fresh log's first ones are made, not refreshed).
    const armed = vi.spyOn(globalThis, "setTimeout");
    try {
      const input: NewEvent = { type: "input", by: { name: "t", role: "operator" }, bytes: 1 };
      const inputSeq = log.appendSoon(input);
      const echo = key(log);
      expect(echo).toBe(inputSeq + 1);
      await waitFor(() => log.head === echo, 5_000, "the key and its echo committed");
      // One such timer: the key's deferred append (which commits both at the end of its tick). A
      // linger started by the input as it went in, before the echo, only woke the event loop later.
      // (The search index's round after a publication is another timer, of its own length.)
      const lingers = armed.mock.calls.filter(([, ms]) => ms === LOG_INPUT_LINGER_MS);
      expect(lingers).toHaveLength(1);
    } finally {
      armed.mockRestore();
    }
  });

  it("a log that does not show output early commits it at the end of the tick, watched or not", async () => {
    const log = openLog(tempDir()).create("s");
    const seq = key(log);
    await endOfTick();
    expect(log.head).toBe(seq);
  });
});
