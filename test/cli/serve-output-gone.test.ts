/**
 * A gateway whose output nobody reads still stops: started as `npm start | tee` with tee gone, a
 * SIGTERM left it listening no more but running for good, its main thread in a futex wait
 * (pino's sonic-boom retrying a failed write at exit in a sleeping loop; red team, hardening
 * round 4, 3 of 3). src/system/log-destination.ts writes the log so that it never waits.
 */
import { spawn } from "node:child_process";
import { closeSync, constants, openSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { describe, expect, it, onTestFinished } from "vitest";
import { cliCommand } from "../helpers/compiled-cli.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/** What a stop of an idle gateway may take, with room for a loaded machine. */
const STOP_BOUND_MS = 10_000;
const TEST_MS = 60_000;

/** A named pipe in a fresh directory. */
function makeFifo(): string {
  const fifo = join(tempDir(), "output");
  execFileSync("mkfifo", [fifo]);
  return fifo;
}

/**
 * The port process `pid` listens on (TCP, IPv4), from /proc: for a gateway whose stdout, which
 * says where it listens, nobody reads.
 */
function listeningPort(pid: number): number | undefined {
  const sockets = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) sockets.add(m[1]!);
    } catch {
      // Closed since it was listed.
    }
  }
  for (const line of readFileSync(`/proc/${pid}/net/tcp`, "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, then the inode.
    if (f[3] === "0A" && sockets.has(f[9] ?? "")) return parseInt(f[1]!.split(":")[1]!, 16);
  }
  return undefined;
}

/**
 * `serve --port 0` at debug level (a log line per request), its stdout and stderr to `output`, or
 * when omitted to a pipe whose reader exited (`serve 2>&1 | tee` with tee gone): every line it
 * writes fails (EPIPE), from the first.
 */
async function serve(output?: number) {
  const [node, ...cli] = cliCommand();
  const dataDir = tempDir();
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: "debug" };
  delete env["SWITCHBOARD_CONFIG"];
  let into = output;
  if (into === undefined) {
    const fifo = makeFifo();
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    into = openSync(fifo, constants.O_WRONLY);
    closeSync(reader);
  }
  const child = spawn(
    node!,
    [...cli, "serve", "--token", TEST_TOKEN, "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir],
    { stdio: ["ignore", output === undefined ? into : "pipe", into], env },
  );
  if (output === undefined) closeSync(into);
  onTestFinished(() => void child.kill("SIGKILL"));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  const url = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`serve exited (${child.exitCode}) before it listened`);
      if (output !== undefined) return /switchboard listening on (\S+)/.exec(out)?.[1];
      const port = listeningPort(child.pid!);
      return port === undefined ? undefined : `http://127.0.0.1:${port}`;
    },
    30_000,
    "listening",
  );
  return { child, url, exited };
}

/** Requests enough to log `bytes` at debug level (about 200 bytes a line). */
async function logAbout(url: string, bytes: number): Promise<void> {
  for (let i = 0; i < bytes / 200; i += 20)
    await Promise.all(Array.from({ length: 20 }, () => fetch(`${url}/healthz`).then((r) => r.text())));
}

/** SIGTERM, and how it ended and how long that took. */
async function stop(gateway: Awaited<ReturnType<typeof serve>>) {
  const started = Date.now();
  gateway.child.kill("SIGTERM");
  const result = await Promise.race([
    gateway.exited,
    new Promise<"still running">((resolve) => setTimeout(() => resolve("still running"), STOP_BOUND_MS)),
  ]);
  return { result, ms: Date.now() - started };
}

describe("serve whose output nobody reads", () => {
  it(
    "exits on SIGTERM when the reader of its stdout and stderr is gone",
    async () => {
      const gateway = await serve();
      // Its "switchboard listening on" line found no reader: it serves on.
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      // Lines written after the reader left fail (EPIPE), the stop's own too.
      await logAbout(gateway.url, 20_000);
      expect((await stop(gateway)).result).toEqual({ code: 0, signal: null });
    },
    TEST_MS,
  );

  it(
    "exits on SIGTERM when its stderr is a full pipe nobody reads",
    async () => {
      const fifo = makeFifo();
      // Read and write ends in one: the pipe has a reader, which never reads.
      const fd = openSync(fifo, constants.O_RDWR);
      onTestFinished(() => closeSync(fd));
      const gateway = await serve(fd);
      // Past the pipe's 64 KiB: the rest waits in the gateway (LOG_QUEUE_MAX_BYTES at most).
      await logAbout(gateway.url, 200 * 1024);
      const res = await fetch(`${gateway.url}/healthz`);
      expect(res.status).toBe(200); // the loop was never blocked
      expect((await stop(gateway)).result).toEqual({ code: 0, signal: null });
    },
    TEST_MS,
  );
});
