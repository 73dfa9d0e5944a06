import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import type { SessionLog } from "../../src/log/session-log.js";
import { CheckpointStore } from "../../src/screen/checkpoint-store.js";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import {
  SCREEN_CHECKPOINT_BYTES,
  SCREEN_FEED_MS,
  SCREEN_FEED_TRICKLE_MS,
  SCREEN_IDLE_MS,
  SCREEN_MAX_EMULATORS,
  SCREEN_SWEEP_MS,
  ScreenService,
} from "../../src/screen/screen-service.js";
import { ScreenThread } from "../../src/screen/screen-thread.js";
import type { Session } from "../../src/sessions/session.js";
import { afterTest } from "../helpers/cleanup.js";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";

function ptySession(events: EventLog, id: string) {
  const log = events.create(id);
  const record = { id, kind: "terminal", pty: true, cols: 40, rows: 10, state: "running", endedAt: null };
  return { id, log, record, removed: false, onRemoved: () => () => undefined } as unknown as Session & {
    log: SessionLog;
  };
}

/** A service as the gateway runs it (fed on its clock's timers), over the sessions in `live`. */
function setup() {
  const dir = tempDir();
  const clock = new ManualClock();
  const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock });
  const checkpoints = new CheckpointStore(join(dir, "screens.db"));
  const live: Session[] = [];
  const service = new ScreenService({
    checkpoints: new CheckpointStore(join(dir, "screens.db")),
    clock,
    sessions: () => live,
  });
  afterTest(() => {
    service.close();
    checkpoints.close();
    events.close();
  });
  return { clock, events, checkpoints, service, live };
}

async function print(events: EventLog, log: SessionLog, text: string): Promise<void> {
  log.appendOutput("stdout", text);
  events.flush();
  await log.backlog.caughtUp();
}

/** Moves the clock a feed period at a time, giving the thread's replies a turn between. */
async function tick(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += SCREEN_FEED_MS) {
    clock.advance(SCREEN_FEED_MS);
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe("ScreenService's thread", () => {
  it("parses a running session's output as it is appended: a checkpoint every 4 MiB with no request or sweep", async () => {
    const { clock, events, checkpoints, live } = setup();
    const s = ptySession(events, "a");
    live.push(s);
    const started = clock.monotonic();
    const line = "y".repeat(63) + "\n";
    for (let i = 0; i < (SCREEN_CHECKPOINT_BYTES + 65536) / 65536; i++) await print(events, s.log, line.repeat(1024));
    // One feed period (its first: the feed was armed idle, at the trickle's), far less than a
    // sweep's: only the feed timer ran.
    await tick(clock, SCREEN_FEED_TRICKLE_MS);
    await waitFor(() => checkpoints.get("a") !== undefined, 20_000, "a checkpoint from the feed");
    expect(clock.monotonic() - started).toBeLessThan(SCREEN_SWEEP_MS);
    expect(checkpoints.get("a")!.offset).toBeGreaterThanOrEqual(SCREEN_CHECKPOINT_BYTES);
  });

  it("hands keystrokes' echoes to the thread once per SCREEN_FEED_TRICKLE_MS, and a request sees the last at once", async () => {
    const { clock, events, service, live } = setup();
    const s = ptySession(events, "keys");
    live.push(s);
    const feeds: number[] = [];
    const post = ScreenThread.prototype.post;
    ScreenThread.prototype.post = function (this: ScreenThread, request) {
      if (request.t === "feed") feeds.push(clock.monotonic());
      post.call(this, request);
    };
    afterTest(() => void (ScreenThread.prototype.post = post));
    // A key every 10 ms for a second, each echoed (a byte or two, well under the trickle's bytes).
    const started = clock.monotonic();
    for (let i = 0; i < 100; i++) {
      await print(events, s.log, String.fromCharCode(97 + (i % 26)));
      clock.advance(10);
      await new Promise((r) => setTimeout(r, 1));
    }
    const span = clock.monotonic() - started;
    expect(feeds.length).toBeGreaterThan(0);
    expect(feeds.length).toBeLessThanOrEqual(Math.ceil(span / SCREEN_FEED_TRICKLE_MS) + 1);
    // What is not handed over yet is fed for a request: the screen shows every key.
    const text = Array.from({ length: 100 }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
    const screen = (await service.screen(s, { format: "text" })).screen.replace(/\n/g, "");
    expect(screen).toBe(text);
    expect(SCREEN_FEED_TRICKLE_MS).toBeGreaterThan(SCREEN_FEED_MS);
  });

  it("checkpoints an idle emulator at its end before dropping it; the next request starts there with the same screen", async () => {
    const { clock, events, checkpoints, service, live } = setup();
    const s = ptySession(events, "b");
    live.push(s);
    await print(events, s.log, "\x1b[31mred\x1b[0m\r\n\x1b]2;t\x07\x1b[?1049h\x1b[4;6Hin the editor");
    const before = await service.screen(s, { format: "ansi" });
    expect((await service.memory()).emulators).toBe(1);
    await tick(clock, SCREEN_IDLE_MS + SCREEN_SWEEP_MS);
    await waitFor(async () => (await service.memory()).emulators === 0, 10_000, "the idle emulator dropped");
    expect(checkpoints.get("b")).toMatchObject({ offset: s.log.outputBytes });
    expect(await service.screen(s, { format: "ansi" })).toEqual(before);
  });

  it(`keeps at most SCREEN_MAX_EMULATORS (${SCREEN_MAX_EMULATORS}) live, checkpointing the least recently used`, async () => {
    const { clock, events, checkpoints, service } = setup();
    const sessions = Array.from({ length: SCREEN_MAX_EMULATORS + 1 }, (_, i) => ptySession(events, `s${i}`));
    for (const [i, s] of sessions.entries()) {
      await print(events, s.log, `prompt ${i}$ `);
      clock.advance(1);
      await service.screen(s, { format: "text" });
    }
    const m = await service.memory();
    expect(m.emulators).toBe(SCREEN_MAX_EMULATORS);
    // The first opened went, with a checkpoint of its screen; the others have none yet.
    expect(checkpoints.get("s0")).toMatchObject({ offset: sessions[0]!.log.outputBytes });
    expect(checkpoints.get("s1")).toBeUndefined();
    expect((await service.screen(sessions[0]!, { format: "text" })).screen).toBe("prompt 0$");
  });
});

describe("the screen thread's feeds", () => {
  it("parses feeds that wait as one, and a view shows only what was fed before it", async () => {
    const thread = new ScreenThread({ onFed: () => undefined, onLost: () => undefined, onBroken: () => undefined });
    afterTest(() => thread.close());
    // A flood in 64 KiB feeds with colours and a resize among them.
    let n = 0;
    const feeds = Array.from({ length: 12 }, (_, i) => {
      let text = i % 5 === 2 ? "\x1b[32m" : "";
      while (text.length < 65_536) text += `${++n}\r\n`;
      const bytes = Buffer.from(text);
      return { bytes, pieces: i === 7 ? [1000, { cols: 30, rows: 12 }, bytes.length - 1000] : [bytes.length] };
    });
    // What parsing each feed as it comes shows, after 6 feeds and after all 12.
    const direct = new ScreenEmulator(40, 10);
    const expected = [];
    for (const [i, { bytes }] of feeds.entries()) {
      if (i === 7) {
        direct.write(bytes.subarray(0, 1000));
        await direct.settled();
        direct.resize(30, 12);
        direct.write(bytes.subarray(1000));
      } else direct.write(bytes);
      await direct.settled();
      if (i === 5 || i === 11) expected.push(direct.view({ format: "ansi", whole: true }));
    }
    // Posted at once (each transfers a copy): the feeds wait while the thread parses the first.
    thread.post({ t: "open", id: "e", tag: 1, cols: 40, rows: 10 });
    const post = (from: number, to: number) => {
      for (const { bytes, pieces } of feeds.slice(from, to))
        thread.post({ t: "feed", id: "e", bytes: new Uint8Array(bytes), pieces });
    };
    post(0, 6);
    const first = thread.view("e", { format: "ansi", whole: true });
    post(6, 12);
    const second = thread.view("e", { format: "ansi", whole: true });
    expect(await first).toEqual(expected[0]);
    expect(await second).toEqual(expected[1]);
  });
});

describe("a screen's offset", () => {
  it("is where live output continues exactly, taken while a real PTY floods `seq 1 30000000`", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", {
      command: ["seq", "1", "30000000"],
      pty: true,
      cols: 80,
      rows: 24,
    });
    const session = gw.core.sessions.get(json.id as string)!;
    await waitFor(async () => session.log.outputBytes > 1_000_000, 10_000, "a megabyte printed");
    const screen = await gw.core.screens.screen(session, { format: "text" });
    expect(session.record.state).toBe("running");
    expect((await http.post(`/v1/sessions/${json.id}/signal`, { signal: "SIGKILL" })).status).toBe(200);
    // The screen is exactly that of a terminal fed the output's first `offset` bytes.
    const prefix: Buffer[] = [];
    for (let at = 0; at < screen.offset;) {
      const slices = session.log.readOutput(at);
      expect(slices.length).toBeGreaterThan(0);
      for (const slice of slices) {
        const end = Math.min(slice.bytes.length, screen.offset - slice.offset);
        if (end <= 0) break;
        prefix.push(Buffer.from(slice.bytes.subarray(0, end)));
        at = slice.offset + end;
      }
    }
    const reference = new ScreenEmulator(80, 24);
    reference.write(Buffer.concat(prefix));
    await reference.settled();
    expect(screen.screen).toBe(reference.view({ format: "text" }).screen);
    reference.dispose();
    // And the bytes from `offset` on complete the cursor's line: the next number after the row above.
    const rows = screen.screen.split("\n");
    const cursorRow = rows[screen.cursor.y] ?? "";
    const next = Buffer.from(session.log.readOutput(screen.offset)[0]!.bytes).toString();
    expect(session.log.readOutput(screen.offset)[0]!.offset).toBe(screen.offset);
    const completed = (cursorRow + next).split(/\r?\n/)[0]!;
    expect(Number(completed)).toBe(Number(rows[screen.cursor.y - 1]) + 1);
  });
});
