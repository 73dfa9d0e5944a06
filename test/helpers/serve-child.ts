import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { onTestFinished } from "vitest";
import { cliCommand } from "./compiled-cli.js";
import { TEST_TOKEN } from "./gateway.js";

/**
 * Node flags for every served child, space-separated; none unless set. E.g. `--import <module>`
 * whose module profiles through `node:inspector` and writes as it goes: the children end with
 * SIGKILL, so `--cpu-prof` would write nothing.
 */
export const SERVE_NODE_FLAGS = "SWITCHBOARD_TEST_SERVE_NODE_FLAGS";

/** A `switchboard serve` running in a child process. */
export interface ChildGateway {
  child: ChildProcess;
  url: string;
  /** Its JSON log lines (stderr) so far; more are added as they come. */
  log: Array<Record<string, unknown>>;
}

/**
 * Runs `switchboard serve` (from the sources, {@link cliCommand}) in a child process on 127.0.0.1 and resolves with
 * its URL once it listens; killed with SIGKILL when the test ends. `port` 0 picks a free one.
 * `wrapper` goes before the node command (e.g. `["prlimit", "--nofile=128"]`); `config` is a
 * config file (`--config`).
 */
export async function serveInChild(options: {
  dataDir: string;
  port?: number;
  wrapper?: string[];
  config?: string;
  /** More `serve` arguments (e.g. `["--redis", url]`). */
  args?: string[];
  /** The admin token (default TEST_TOKEN). */
  token?: string;
  /**
   * Terminal sessions under holders, outliving the gateway (serve's default); off unless asked, so
   * a killed gateway's sessions come back `lost` as these tests expect.
   */
  holders?: boolean;
  /** Registers the kill (default: when the running test finishes; give one from a beforeAll). */
  defer?: (fn: () => void) => void;
}): Promise<ChildGateway> {
  const [node, ...cli] = cliCommand();
  const flags = (process.env[SERVE_NODE_FLAGS] ?? "").split(" ").filter((flag) => flag !== "");
  const [program, ...args] = [
    ...(options.wrapper ?? []),
    node!,
    ...flags,
    ...cli,
    "serve",
    "--token",
    options.token ?? TEST_TOKEN,
    "--host",
    "127.0.0.1",
    "--port",
    String(options.port ?? 0),
    "--data-dir",
    options.dataDir,
    ...(options.config !== undefined ? ["--config", options.config] : []),
    "--holders",
    options.holders === true ? "on" : "off",
    ...(options.args ?? []),
  ];
  const child = spawn(program!, args, { stdio: ["ignore", "pipe", "pipe"] });
  (options.defer ?? onTestFinished)(() => {
    child.kill("SIGKILL");
  });
  const log: Array<Record<string, unknown>> = [];
  let stderr = "";
  let partial = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) if (line.startsWith("{")) log.push(JSON.parse(line) as Record<string, unknown>);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /switchboard listening on (https?:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on("error", (error) => reject(new Error(`cannot run ${program}: ${error.message}`)));
    child.on("exit", (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
  });
  return { child, url, log };
}
