import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import type { SessionLog } from "../../src/log/session-log.js";
import { CheckpointStore } from "../../src/screen/checkpoint-store.js";
import { ScreenService } from "../../src/screen/screen-service.js";
import type { Session } from "../../src/sessions/session.js";
import { afterTest } from "../helpers/cleanup.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

function ptySession(events: EventLog, id: string, cols: number, rows: number) {
  const log = events.create(id);
  const record = { id, kind: "terminal", pty: true, cols, rows, state: "running", endedAt: null };
  return { id, log, record, removed: false, onRemoved: () => () => undefined } as unknown as Session & {
    log: SessionLog;
  };
}

/** A service fed by requests only (no timers), its thread limited to `threadHeapMb` when given. */
function setup(threadHeapMb?: number) {
  const dir = tempDir();
  const clock = new ManualClock();
  const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock });
  const service = new ScreenService({ checkpoints: new CheckpointStore(join(dir, "screens.db")), clock, threadHeapMb });
  afterTest(() => {
    service.close();
    events.close();
  });
  return { events, service };
}

async function print(events: EventLog, log: SessionLog, text: string): Promise<void> {
  log.appendOutput("stdout", text);
  events.flush();
  await log.backlog.caughtUp();
}

/**
 * A service whose thread may use 64 MiB, a small session whose screen shows "still here", and a
 * huge one whose printed output runs the thread out of heap once parsed: REPs fill 4,000 × 2,002
 * cells with a character and its mark, a string of its own on each (one REP prints at most
 * SCREEN_REPEAT_CODE_POINTS_MAX, 512 Ki cells of 2 code points).
 */
async function hugeBesideSmall() {
  const { events, service } = setup(64);
  const huge = ptySession(events, "huge", 4000, 1000);
  const small = ptySession(events, "small", 40, 10);
  await print(events, small.log, "still here");
  expect((await service.screen(small, { format: "text" })).screen).toBe("still here");
  await print(events, huge.log, "e\u0301\x1b[999999999b".repeat(16));
  return { events, service, huge, small };
}

describe("the screen thread under one hostile session", () => {
  it("answers another session's screen promptly while one floods REPs of ~10 ms each", async () => {
    const { events, service } = setup();
    // Started first: booting the thread is no part of what is measured.
    await service.ready();
    const hostile = ptySession(events, "hostile", 200, 50);
    const quiet = ptySession(events, "quiet", 40, 10);
    // REPs of 200,000 cells (~10 ms each), under the clamp's bound (200 × 1,052) so passed on
    // uncut: one 16 KiB write of them parses for seconds, the whole flood for minutes.
    await print(events, hostile.log, "x\x1b[200000b".repeat(30_000));
    await print(events, quiet.log, "hello from the quiet one");
    // Its request is never answered in this test: the service's close fails it.
    let hostileDone = false;
    const flood = service.screen(hostile, { format: "text" }).then(
      () => (hostileDone = true),
      () => undefined,
    );
    // The whole flood is handed to the thread before the quiet session asks.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const lines = ["hello from the quiet one"];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const screen = await service.screen(quiet, { format: "text" });
      const took = performance.now() - started;
      expect(screen.screen).toBe(lines.join("\n"));
      // A turn or two of the flood's slices (~0.2 s here), not one 16 KiB write of it (12.6 s
      // without the budget) or its backlog (minutes); generous for a loaded machine (nice 10).
      expect(took).toBeLessThan(5_000);
      await print(events, quiet.log, `\r\nline ${i}`);
      lines.push(`line ${i}`);
    }
    expect(hostileDone).toBe(false);
    service.close();
    await flood;
  }, 30_000);

  it("survives a session whose screen runs the thread out of heap: that one is SCREEN_UNAVAILABLE, another is served", async () => {
    const { events, service, huge, small } = await hugeBesideSmall();
    await expect(service.screen(huge, { format: "text" })).rejects.toMatchObject({ code: "SCREEN_UNAVAILABLE" });
    await print(events, small.log, " and after");
    // The small session's emulator went with the thread: it is rebuilt from its log.
    const screen = await waitFor(
      () =>
        service.screen(small, { format: "text" }).then(
          (s) => s.screen,
          () => undefined,
        ),
      20_000,
      "the small session's screen",
    );
    expect(screen).toBe("still here and after");
    // The huge one is not parsed again: asked now, it says why and what to do.
    await expect(service.screen(huge, { format: "text" })).rejects.toMatchObject({
      code: "SCREEN_UNAVAILABLE",
      message: expect.stringContaining("GET /v1/sessions/huge/output"),
    });
  }, 60_000);
  it("answers another session's screen asked all along while one's output runs the thread out of heap", async () => {
    const { service, huge, small } = await hugeBesideSmall();
    let hugeAnswered = false;
    const hugeAsked = service.screen(huge, { format: "text" });
    hugeAsked.then(
      () => (hugeAnswered = true),
      () => (hugeAnswered = true),
    );
    // A request of the small session's every 10 ms: the one the thread stops under (it waits
    // behind the huge parse) is made again in the next thread, not failed; the huge session is
    // blamed and quarantined.
    const answers: string[] = [];
    const until = Date.now() + 30_000;
    while (!hugeAnswered && Date.now() < until) {
      answers.push(
        await service.screen(small, { format: "text" }).then(
          (s) => s.screen,
          (error: Error) => `failed: ${error.message}`,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await expect(hugeAsked).rejects.toMatchObject({ code: "SCREEN_UNAVAILABLE" });
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a !== "still here")).toEqual([]);
  }, 60_000);
});
