import { createServer, connect } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import {
  FD_CHECK_INTERVAL_MS,
  FD_COUNT_MAX_AGE_MS,
  FdMonitor,
  reportAcceptErrors,
} from "../../src/server/ops/fd-monitor.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { GatewayMetrics } from "../../src/server/ops/metrics.js";

/** A monitor over a count the test sets, with its log lines and metrics. */
function monitored(limit = 1000) {
  const clock = new ManualClock();
  const lines: Array<{ level: number; msg: string; open?: number; limit?: number; failed?: string }> = [];
  const logger = createLogger({ level: "info", destination: { write: (l: string) => void lines.push(JSON.parse(l)) } });
  const metrics = new GatewayMetrics();
  const state = { open: 100, reads: 0 };
  const monitor = new FdMonitor({
    clock,
    logger,
    metrics,
    read: () => {
      state.reads++;
      return { open: state.open, limit };
    },
  });
  metrics.observeFds(monitor);
  const metric = async (name: string) =>
    (await metrics.registry.metrics()).split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name + "{"));
  const tick = () => clock.advance(FD_CHECK_INTERVAL_MS);
  return { clock, lines, logger, state, monitor, metric, tick, warnings: () => lines.filter((l) => l.level === 40) };
}

describe("the file descriptor monitor", () => {
  it("logs one warning when 90% of the limit is open and one line when under 80% again, however long it stays", async () => {
    const m = monitored();
    m.tick();
    expect(m.lines).toEqual([]);
    m.state.open = 900;
    m.tick();
    expect(m.warnings()).toMatchObject([
      { open: 900, limit: 1000, msg: expect.stringMatching(/ulimit -n.*LimitNOFILE/) },
    ]);
    expect(await m.metric("switchboard_fds_near_limit")).toBe("switchboard_fds_near_limit 1");
    // Staying near it, or dipping into the band between 80% and 90%, says nothing more.
    for (const open of [1000, 950, 850, 990]) {
      m.state.open = open;
      m.tick();
    }
    expect(m.lines).toHaveLength(1);
    m.state.open = 799;
    m.tick();
    expect(m.lines.slice(1)).toMatchObject([
      { level: 30, open: 799, msg: "file descriptors back under 80% of the limit" },
    ]);
    expect(await m.metric("switchboard_fds_near_limit")).toBe("switchboard_fds_near_limit 0");
    m.monitor.close();
    expect(m.clock.pending).toBe(0);
  });

  it("warns at once when something fails for lack of descriptors, counts each failure, and stays near the limit while they go on", async () => {
    const m = monitored();
    expect(m.monitor.usage()).toEqual({ open: 100, limit: 1000 });
    // Below 90% by the count (e.g. the system-wide table is full): the failure alone says it,
    // with a fresh count even right after one was taken.
    m.state.open = 120;
    m.monitor.reportExhausted("accept");
    m.monitor.reportExhausted("accept");
    m.monitor.reportExhausted("session");
    expect(m.warnings()).toMatchObject([
      {
        failed: "accept",
        open: 120,
        msg: expect.stringMatching(/^the system is out of file descriptors .*fs\.file-max/),
      },
    ]);
    expect(await m.metric('switchboard_fd_exhaustion_total{operation="accept"}')).toMatch(/ 2$/);
    expect(await m.metric('switchboard_fd_exhaustion_total{operation="session"}')).toMatch(/ 1$/);
    // Failures since the last check keep it on; a check without any turns it off.
    m.tick();
    expect(m.monitor.nearLimit).toBe(true);
    m.tick();
    expect(m.monitor.nearLimit).toBe(false);
    expect(m.lines.map((l) => l.level)).toEqual([40, 30]);
  });

  it("says whose limit it was: the gateway's when something failed near its limit, the system's (ENFILE) when far below it", async () => {
    for (const [open, whose] of [
      [995, /^the gateway is near its file descriptor limit: .*`ulimit -n`/],
      [850, /^the gateway is near its file descriptor limit: /],
      [790, /^the system is out of file descriptors \(ENFILE: .*`fs\.file-max`/],
    ] as const) {
      const m = monitored();
      m.state.open = open;
      m.monitor.reportExhausted("agent");
      m.monitor.reportExhausted("plugin");
      expect(m.warnings()).toMatchObject([{ failed: "agent", open, limit: 1000, msg: expect.stringMatching(whose) }]);
      expect(await m.metric('switchboard_fd_exhaustion_total{operation="agent"}')).toMatch(/ 1$/);
      expect(await m.metric('switchboard_fd_exhaustion_total{operation="plugin"}')).toMatch(/ 1$/);
      m.monitor.close();
    }
  });

  it("counts at most once per second, however often it is asked", async () => {
    const m = monitored();
    for (let i = 0; i < 20; i++) {
      m.monitor.usage();
      await m.metric("process_open_fds");
    }
    expect(m.state.reads).toBe(1);
    m.clock.advance(FD_COUNT_MAX_AGE_MS);
    m.monitor.usage();
    expect(m.state.reads).toBe(2);
  });

  it("an accept error on a listening server is counted and logged, and the server keeps serving (unheard, Node would end the process)", async () => {
    const m = monitored();
    const server = createServer((socket) => socket.end("hi"));
    onTestFinished(() => void server.close());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    reportAcceptErrors(server, m.monitor, m.logger);
    // EMFILE: every descriptor the gateway may have is open.
    m.state.open = 1000;
    // What net.js `onconnection` emits when libuv reports a failed accept.
    const acceptError = (code: string) => Object.assign(new Error(`accept ${code}`), { code, syscall: "accept" });
    server.emit("error", acceptError("EMFILE"));
    server.emit("error", acceptError("EMFILE"));
    server.emit("error", acceptError("ENOBUFS"));
    expect(await m.metric('switchboard_fd_exhaustion_total{operation="accept"}')).toMatch(/ 2$/);
    expect(m.lines.map((l) => [l.level, l.msg])).toEqual([
      [40, expect.stringMatching(/file descriptor limit/)],
      [50, "accepting a connection failed"],
    ]);
    const { port } = server.address() as { port: number };
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.on("data", (d) => {
        resolve(d.toString());
        socket.destroy();
      });
    });
    expect(answer).toBe("hi");
  });
});
