import { execFile, execFileSync, spawn } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpClient } from "../../src/client/node.js";
import type { SessionInfo } from "../../src/client/node.js";
import { startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { cliCommand } from "../helpers/compiled-cli.js";
import { waitFor } from "../helpers/wait-for.js";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The CLI run from its sources, as `npx switchboard` would run the built one. */
export const CLI = cliCommand();
const TMUX = "/usr/bin/tmux";
/** A non-interactive CLI run that takes longer than this is killed (and fails its test). */
export const CLI_TIMEOUT_MS = 45_000;
/** How long a screen is polled for an expected text. */
export const SCREEN_WAIT_MS = 20_000;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (non-interactive commands). */
export function cli(args: string[], env: Record<string, string>, timeoutMs = CLI_TIMEOUT_MS): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      CLI[0]!,
      [...CLI.slice(1), ...args],
      { cwd: REPO, env: { ...process.env, ...env, SWITCHBOARD_LOG_LEVEL: "silent" }, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A CLI run a test drives while it runs (`logs -f`, a reader that goes away): its output so far and its exit. */
export interface RunningCli {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

/** Starts the CLI without waiting for it. */
export function spawnCli(args: string[], env: Record<string, string>): RunningCli {
  const child = spawn(CLI[0]!, [...CLI.slice(1), ...args], {
    cwd: REPO,
    env: { ...process.env, ...env, SWITCHBOARD_LOG_LEVEL: "silent" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A private tmux server (its own socket) with one window running a plain shell, driven as a
 * person would: `type` sends keys, `screen` reads what is shown.
 */
export class Tmux {
  /** A socket of its own (removed by kill), so the test never touches another tmux server. */
  private readonly dir = mkdtempSync(join(tmpdir(), "sb-tmux-"));
  private readonly socket = join(this.dir, "socket");
  private started = false;

  constructor(
    private readonly env: Record<string, string>,
    readonly cols = 100,
    readonly rows = 20,
  ) {}

  start(): void {
    const exports = Object.entries({ ...this.env, PS1: "local$ ", SWITCHBOARD_LOG_LEVEL: "silent" })
      .map(([k, v]) => `${k}=${shellQuote(v)}`)
      .join(" ");
    this.tmux([
      "-f",
      "/dev/null",
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      String(this.cols),
      "-y",
      String(this.rows),
      `cd ${shellQuote(REPO)} && env ${exports} bash --norc --noprofile`,
    ]);
    this.started = true;
  }

  /** Types `text` (literally), then presses Enter unless told not to. */
  type(text: string, enter = true): void {
    this.tmux(["send-keys", "-t", "t", "-l", text]);
    if (enter) this.tmux(["send-keys", "-t", "t", "Enter"]);
  }

  /** Presses keys by tmux name (`C-]`, `C-c`, `Enter`). */
  keys(...names: string[]): void {
    this.tmux(["send-keys", "-t", "t", ...names]);
  }

  /** The visible screen, trailing blank lines removed. */
  screen(): string {
    return this.tmux(["capture-pane", "-p", "-t", "t"]).replace(/\s+$/, "");
  }

  resize(cols: number, rows: number): void {
    this.tmux(["resize-window", "-t", "t", "-x", String(cols), "-y", String(rows)]);
  }

  /** Terminal modes of the pane: alternate screen, cursor shown, mouse reporting. */
  modes(): { alternate: boolean; cursor: boolean; mouse: boolean } {
    const [alternate, cursor, mouse] = this.tmux([
      "display-message",
      "-p",
      "-t",
      "t",
      "#{alternate_on} #{cursor_flag} #{mouse_any_flag}",
    ])
      .trim()
      .split(" ");
    return { alternate: alternate === "1", cursor: cursor === "1", mouse: mouse === "1" };
  }

  /** State of the pane tmux keeps for a program: the scroll region, autowrap, insert mode. */
  state(): { scrollRegion: string; wrap: boolean; insert: boolean } {
    const [upper, lower, wrap, insert] = this.tmux([
      "display-message",
      "-p",
      "-t",
      "t",
      "#{scroll_region_upper} #{scroll_region_lower} #{wrap_flag} #{insert_flag}",
    ])
      .trim()
      .split(" ");
    return { scrollRegion: `${upper}-${lower}`, wrap: wrap === "1", insert: insert === "1" };
  }

  /** The shell's pid in the pane (the attach process is its child). */
  panePid(): number {
    return Number(this.tmux(["display-message", "-p", "-t", "t", "#{pane_pid}"]).trim());
  }

  /**
   * Waits until the screen matches; fails with the screen in the message. It polls without
   * blocking: the gateway under test runs in this process, and a dozen tests polling at once
   * with synchronous tmux calls would hold its event loop for most of every second.
   */
  async waitFor(pattern: RegExp, ms = SCREEN_WAIT_MS): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const screen = (await this.tmuxAsync(["capture-pane", "-p", "-t", "t"])).replace(/\s+$/, "");
      if (pattern.test(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`screen did not match ${pattern} within ${ms} ms:\n${screen}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Runs a command in the local shell and returns what it printed between two markers. */
  async run(command: string): Promise<string> {
    const tag = randomBytes(3).toString("hex");
    this.keys("C-u");
    this.type(`echo B${tag}; ${command}; echo E${tag}`);
    const screen = await this.waitFor(new RegExp(`^E${tag}$`, "m"));
    const start = screen.lastIndexOf(`\nB${tag}\n`);
    return screen.slice(start + tag.length + 3, screen.lastIndexOf(`E${tag}`)).trim();
  }

  /** The exit status of the last command the local shell ran. */
  async exitStatus(): Promise<number> {
    const tag = randomBytes(3).toString("hex");
    this.keys("C-u");
    this.type(`echo "rc=$?:${tag}"`);
    const screen = await this.waitFor(new RegExp(`^rc=\\d+:${tag}$`, "m"));
    return Number(new RegExp(`^rc=(\\d+):${tag}$`, "m").exec(screen)![1]);
  }

  /** Clears the visible screen and scrollback, so later waits see only new output. */
  clear(): void {
    this.type("clear");
    this.tmux(["clear-history", "-t", "t"]);
  }

  kill(): void {
    if (this.started) {
      this.started = false;
      try {
        this.tmux(["kill-server"]);
      } catch (error) {
        // The server may already be gone with its last window; nothing left to clean up.
        if (!(error instanceof Error)) throw error;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private tmux(args: string[]): string {
    return execFileSync(TMUX, ["-S", this.socket, ...args], { encoding: "utf8" });
  }

  private tmuxAsync(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(TMUX, ["-S", this.socket, ...args], { encoding: "utf8" }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
    });
  }
}

/** A gateway for a test file's CLI runs: `env` points the CLI at it, with a data dir that has no token file. */
export interface CliGateway {
  gw: TestGateway;
  http: HttpClient;
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startCliGateway(): Promise<CliGateway> {
  const gw = await startTestGateway();
  const emptyDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
  return {
    gw,
    http: new HttpClient({ url: gw.url, token: gw.token }),
    // A token file is found only through the data dir: the environment carries none.
    env: { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token, SWITCHBOARD_DATA_DIR: emptyDir },
    close: async () => {
      await gw.close();
      rmSync(emptyDir, { recursive: true, force: true });
    },
  };
}

/** The session once it is no longer running. */
export async function sessionEnded(http: HttpClient, id: string): Promise<SessionInfo> {
  await waitFor(async () => (await http.getSession(id)).state !== "running", 10_000);
  return http.getSession(id);
}
