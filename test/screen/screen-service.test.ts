import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import type { SessionLog } from "../../src/log/session-log.js";
import { CheckpointStore } from "../../src/screen/checkpoint-store.js";
import {
  SCREEN_CHECKPOINT_BYTES,
  SCREEN_IDLE_MS,
  SCREEN_QUIET_MS,
  ScreenService,
} from "../../src/screen/screen-service.js";
import type { Session } from "../../src/sessions/session.js";
import { afterTest } from "../helpers/cleanup.js";
import { tempDir } from "../helpers/tmp.js";

/** A PTY session as the service sees it: its record and a real log on SQLite. */
function ptySession(events: EventLog, id: string, state: "running" | "exited" = "running") {
  const log = events.create(id);
  const record = { id, kind: "terminal", pty: true, cols: 40, rows: 10, state, endedAt: null as number | null };
  const removeListeners: Array<() => void> = [];
  const onRemoved = (listener: () => void) => {
    removeListeners.push(listener);
    return () => undefined;
  };
  const remove = () => removeListeners.forEach((l) => l());
  return { id, log, record, removed: false, onRemoved, remove } as unknown as Session & {
    log: SessionLog;
    remove(): void;
  };
}

function setup() {
  const dir = tempDir();
  const clock = new ManualClock();
  const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock });
  const checkpoints = new CheckpointStore(join(dir, "screens.db"));
  const service = new ScreenService({ checkpoints: new CheckpointStore(join(dir, "screens.db")), clock });
  afterTest(() => {
    service.close();
    checkpoints.close();
    events.close();
  });
  return { clock, events, checkpoints, service, file: join(dir, "screens.db") };
}

async function print(events: EventLog, log: SessionLog, text: string): Promise<void> {
  log.appendOutput("stdout", text);
  events.flush();
  await log.backlog.caughtUp();
}

describe("ScreenService checkpoints", () => {
  it("saves a checkpoint once a running session's output has been quiet for SCREEN_QUIET_MS, not before", async () => {
    const { clock, events, checkpoints, service } = setup();
    const s = ptySession(events, "a");
    await print(events, s.log, "\x1b[2J\x1b[3;3Hprompt$ ");
    await service.sweep([s]);
    expect(checkpoints.get("a")).toBeUndefined();
    clock.advance(SCREEN_QUIET_MS - 1);
    await service.sweep([s]);
    expect(checkpoints.get("a")).toBeUndefined();
    clock.advance(1);
    await service.sweep([s]);
    expect(checkpoints.get("a")).toMatchObject({ offset: s.log.outputBytes, cols: 40, rows: 10 });
    // The screen it reflects.
    const screen = await service.screen(s, { format: "text" });
    expect(screen.screen).toBe("\n\n  prompt$");
    expect(screen.cursor).toMatchObject({ x: 10, y: 2 });
  });

  it("saves one every SCREEN_CHECKPOINT_BYTES of output, however busy the session is", async () => {
    const { events, checkpoints, service } = setup();
    const s = ptySession(events, "b");
    const line = "x".repeat(63) + "\n";
    for (let i = 0; i < (SCREEN_CHECKPOINT_BYTES + 4096) / 65536; i++) await print(events, s.log, line.repeat(1024));
    // Never quiet: the sweep runs right after the output, on a clock that did not move.
    for (let i = 0; i < 40 && checkpoints.get("b") === undefined; i++) await service.sweep([s]);
    expect(checkpoints.get("b")!.offset).toBeGreaterThanOrEqual(SCREEN_CHECKPOINT_BYTES);
  });

  it("forgets the checkpoint of a session no longer listed, and drops idle emulators", async () => {
    const { clock, events, checkpoints, service } = setup();
    const s = ptySession(events, "c", "exited");
    await print(events, s.log, "bye\r\n");
    await service.sweep([s]);
    expect(checkpoints.get("c")).toBeDefined();
    clock.advance(SCREEN_IDLE_MS);
    await service.sweep([]);
    expect(checkpoints.get("c")).toBeUndefined();
  });

  it("answers from an ended session's checkpoint in a new service, parsing nothing, until it prints again", async () => {
    const { events, service, file } = setup();
    const s = ptySession(events, "e", "exited");
    await print(events, s.log, "\x1b]2;vim\x07\x1b[31mred\x1b[0m\r\n\x1b[?1049h\x1b[5;8H\x1b[1mframe\x1b[0m\x1b[2;3H");
    const views = [
      { format: "text" },
      { format: "ansi" },
      { format: "ansi", whole: true },
      { format: "text", cols: 20, rows: 5 },
    ] as const;
    const warm = await Promise.all(views.map((v) => service.screen(s, v)));
    await service.sweep([s]);
    // A restarted gateway's service on the same checkpoints.
    const again = new ScreenService({ checkpoints: new CheckpointStore(file), clock: new ManualClock() });
    afterTest(() => again.close());
    for (const [i, v] of views.slice(0, 3).entries()) expect(await again.screen(s, v)).toEqual(warm[i]);
    expect((await again.memory()).emulators).toBe(0);
    // Another size than the PTY's is drawn by an emulator restored from the checkpoint.
    expect(await again.screen(s, views[3])).toEqual(warm[3]);
    expect((await again.memory()).emulators).toBe(1);
    // Output after the checkpoint is parsed, not hidden behind it.
    await print(events, s.log, "more");
    const third = new ScreenService({ checkpoints: new CheckpointStore(file), clock: new ManualClock() });
    afterTest(() => third.close());
    expect((await third.screen(s, { format: "text" })).screen).toBe("\n  more\n\n\n       frame");
  });

  it("parses, not reads, once a resize was logged since the checkpoint (behind other events)", async () => {
    const { events, service, file } = setup();
    const s = ptySession(events, "f", "exited");
    await print(events, s.log, "\x1b[?1049h\x1b[3;1Ha row long enough to be cut when the screen narrows");
    expect((await service.screen(s, { format: "text" })).cols).toBe(40);
    await service.sweep([s]);
    // Keys typed since, then the resize.
    const by = { name: "admin", role: "admin" } as const;
    for (let i = 0; i < 2_000; i++) s.log.append({ type: "input", by, data: "k" } as never);
    s.log.append({ type: "resize", by, cols: 20, rows: 10 } as never);
    events.flush();
    await s.log.backlog.caughtUp();
    const again = new ScreenService({ checkpoints: new CheckpointStore(file), clock: new ManualClock() });
    afterTest(() => again.close());
    const screen = await again.screen(s, { format: "text" });
    expect(screen.cols).toBe(20);
    expect((await again.memory()).emulators).toBe(1);
  });

  it("forgets a session's checkpoint as soon as the session is removed", async () => {
    const { events, checkpoints, service } = setup();
    const s = ptySession(events, "d", "exited");
    await print(events, s.log, "secret on screen\r\n");
    await service.sweep([s]);
    expect(checkpoints.get("d")?.state).toContain("secret on screen");
    s.remove();
    expect(checkpoints.get("d")).toBeUndefined();
  });
});
