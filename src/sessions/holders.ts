import { spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
} from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { PeerRefusal } from "./holder-peer.js";
import { TimerSet } from "../system/timer-set.js";
import { processStartTime } from "./processes.js";
import { AdoptionQueue } from "./adoption-queue.js";
import { InternalError } from "../protocol/errors.js";

/*
 * Where a gateway's session holders live (native/holder.c): one Unix socket per held session
 * in DATA_DIR/holders (0700, this uid's), and how one is started. docs/architecture.md,
 * "Session holders"; docs/security.md, "Session holders".
 */

/** How long the start of a holder may take (it forks and execs the program, then answers); then it is killed. */
export const HOLDER_START_TIMEOUT_MS = 10_000;
/**
 * Holders starting at once (spawned, not yet answered). Each forks twice and execs the program:
 * more at once only starve the gateway's own thread of CPU (test/sessions/holder-start.test.ts).
 */
export const HOLDER_STARTS_AT_ONCE = 4;
/** What is kept of a starting holder's stdout and stderr (its answer is one short line). */
const HOLDER_ANSWER_MAX_BYTES = 4096;
/** `sun_path` holds 108 bytes with its NUL; a longer path is reached through `/proc/self/fd`. */
const SOCKET_PATH_MAX = 107;

/** What the gateway does with held sessions when it stops (config `sessions.onStop`). */
export type OnStop = "keep" | "end";

/** A held session's holder, as its record keeps it. */
export interface HolderRef {
  pid: number;
  /** `processStartTime` of the holder: tells it from a later process with its pid. */
  start: number | null;
  /** The session's output offset when the holder started: holder offsets are counted from it. */
  outputBase: number;
}

/** A session with a holder, as the log names it. */
export interface HeldSession {
  id: string;
  pid: number | null;
  holder?: HolderRef | null;
}

/** What a holder starts (see TerminalProcessOptions). */
export interface HolderSpec {
  command: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
  pty: boolean;
  cols: number;
  rows: number;
  drainTimeoutMs: number;
}

/** A holder that started, and its program. */
export interface Launched {
  holderPid: number;
  childPid: number;
  /** The holder's `processStartTime`: with its pid, what the peer of its socket must be at adoption (holder-peer.ts). */
  holderStart: number | null;
}

/** The holder binary `npm run build` makes (build/Release, two levels above src/<part> and dist/<part>). */
export function holderBinary(): string | null {
  const path = fileURLToPath(new URL("../../build/Release/holder", import.meta.url));
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return null;
  }
}

/** The holders of one data directory. */
export class Holders {
  readonly dir: string;
  readonly binary: string;
  /** Set to `end` for a stop that ends every session (`switchboard shutdown --sessions`). */
  onStop: OnStop;
  /** An fd of `dir`, for socket paths too long for `sun_path`. */
  private dirFd: number | null = null;
  /** Launches waiting for their turn to spawn ({@link turnToSpawn}), the timer of the next, and those under way. */
  private readonly spawnQueue: Array<() => void> = [];
  private readonly timers = new TimerSet<"spawn">({
    // Referenced: a launch is waiting on it.
    spawn: { after: 0, fire: () => this.spawnNext(), ref: true },
  });
  private launching = 0;
  /** Held sessions restored at start and not taken over yet: after the gateway listens, or at once when needed. */
  readonly adoptions = new AdoptionQueue();

  private readonly onAdopted: ((session: HeldSession) => void) | undefined;
  private readonly onRefused: ((session: HeldSession, refusal: PeerRefusal) => void) | undefined;

  /**
   * Makes DATA_DIR/holders (0700); throws when it is not a directory of this uid's. `onAdopted`
   * hears of each session a holder of an earlier gateway gave to this one.
   */
  constructor(options: {
    dataDir: string;
    binary: string;
    onStop: OnStop;
    onAdopted?: (session: HeldSession) => void;
    /** The peer on a session's holder socket was not its holder (holder-peer.ts): it was refused, the session lost. */
    onRefused?: (session: HeldSession, refusal: PeerRefusal) => void;
  }) {
    this.dir = join(options.dataDir, "holders");
    this.binary = options.binary;
    this.onStop = options.onStop;
    this.onAdopted = options.onAdopted;
    this.onRefused = options.onRefused;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(this.dir);
    if (!stat.isDirectory() || stat.uid !== process.getuid?.())
      throw new InternalError(`${this.dir} is not a directory of this user's: remove it`);
    chmodSync(this.dir, 0o700);
  }

  /** The socket a session's holder listens on, as the gateway connects to it. */
  socketPath(sessionId: string): string {
    const direct = join(this.dir, socketName(sessionId));
    if (Buffer.byteLength(direct) <= SOCKET_PATH_MAX) return direct;
    this.dirFd ??= openSync(this.dir, constants.O_RDONLY | constants.O_DIRECTORY);
    return `/proc/self/fd/${this.dirFd}/${socketName(sessionId)}`;
  }

  /**
   * Starts a holder for `sessionId` that starts the program; resolves once the program runs.
   * Rejects naming the reason (errno), or when the holder did not answer within
   * {@link HOLDER_START_TIMEOUT_MS} (it is killed then). Node's spawn blocks until the exec, so
   * holders are spawned one per loop turn, at most {@link HOLDER_STARTS_AT_ONCE} under way
   * ({@link turnToSpawn}). test/sessions/holder-start.test.ts.
   */
  async launch(sessionId: string, spec: HolderSpec): Promise<Launched> {
    await this.turnToSpawn();
    try {
      return await this.spawnHolder(sessionId, spec);
    } finally {
      this.launching--;
      this.scheduleSpawn();
    }
  }

  private spawnHolder(sessionId: string, spec: HolderSpec): Promise<Launched> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, [socketName(sessionId)], {
        cwd: this.dir,
        env: {},
        stdio: ["pipe", "pipe", "pipe"],
      });
      const out = boundedText();
      const err = boundedText();
      child.stdout.on("data", out.push);
      child.stderr.on("data", err.push);
      // A holder that failed before reading its spec closes stdin: its answer says why.
      child.stdin.on("error", () => undefined);
      child.stdin.end(encodeSpec(spec));
      let failure: Error | undefined;
      const timer = setTimeout(() => {
        failure = new InternalError(`the session holder did not answer within ${HOLDER_START_TIMEOUT_MS} ms`);
        child.kill("SIGKILL");
      }, HOLDER_START_TIMEOUT_MS);
      child.once("error", (error) => (failure ??= error));
      // 'close': the holder's first process exited and its output is read (the daemon's is /dev/null).
      child.once("close", () => {
        clearTimeout(timer);
        try {
          if (failure !== undefined) throw failure;
          resolve(launched(out.text(), err.text()));
        } catch (error) {
          reject(error as Error);
        }
      });
    });
  }

  /**
   * Resolves in a turn of the event loop of its own (timers and I/O run between two spawns), after
   * the launches queued before it, once fewer than {@link HOLDER_STARTS_AT_ONCE} are under way.
   */
  private turnToSpawn(): Promise<void> {
    return new Promise((resolve) => {
      this.spawnQueue.push(resolve);
      this.scheduleSpawn();
    });
  }

  private scheduleSpawn(): void {
    if (this.timers.isPending("spawn") || this.spawnQueue.length === 0 || this.launching >= HOLDER_STARTS_AT_ONCE)
      return;
    this.timers.start("spawn");
  }

  private spawnNext(): void {
    const next = this.spawnQueue.shift();
    if (next !== undefined) {
      this.launching++;
      next();
    }
    this.scheduleSpawn();
  }

  /**
   * {@link launch} for a caller that cannot wait (an agent's process: `AgentProcesses.start` is
   * synchronous); blocks the event loop until the holder answers.
   */
  launchSync(sessionId: string, spec: HolderSpec): Launched {
    const result = spawnSync(this.binary, [socketName(sessionId)], {
      cwd: this.dir,
      input: encodeSpec(spec),
      env: {},
      encoding: "utf8",
      timeout: HOLDER_START_TIMEOUT_MS,
      stdio: ["pipe", "pipe", "pipe"],
    });
    if (result.error) throw result.error;
    return launched(result.stdout, result.stderr);
  }

  /** A session's holder answered this gateway: said in the log and the metrics. */
  adopted(session: HeldSession): void {
    this.onAdopted?.(session);
  }

  /** The peer on a session's holder socket was refused: said in the log. */
  refused(session: HeldSession, refusal: PeerRefusal): void {
    this.onRefused?.(session, refusal);
  }

  /** The session ids whose holders have a socket here (one per held process; agents' names add a suffix). */
  heldSessionIds(): Map<string, string[]> {
    const byId = new Map<string, string[]>();
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".sock")) continue;
      const id = name.slice(0, name.indexOf("."));
      byId.set(id, [...(byId.get(id) ?? []), name]);
    }
    return byId;
  }

  /**
   * Ends the holder listening on socket `name` (as {@link heldSessionIds} lists it) and its
   * program: without its socket the holder ends the program (TERM and HUP, KILL 3 s later) within 2 s.
   */
  end(name: string): void {
    rmSync(join(this.dir, name), { force: true });
  }

  /** Whether the holder `ref` names still runs (the same process: pid and start time). */
  static alive(ref: HolderRef): boolean {
    const start = processStartTime(ref.pid);
    return start !== null && (ref.start === null || start === ref.start);
  }

  close(): void {
    this.adoptions.close();
    if (this.dirFd !== null) closeSync(this.dirFd);
    this.dirFd = null;
  }
}

/** The holder's answer ("ok HOLDER_PID CHILD_PID" or "err ERRNO STEP", native/holder.c), or throws the failure it names. */
function launched(stdout: string, stderr: string): Launched {
  const line = stdout.trim();
  const ok = /^ok (\d+) (\d+)$/.exec(line);
  if (ok) {
    const holderPid = Number(ok[1]);
    return { holderPid, childPid: Number(ok[2]), holderStart: processStartTime(holderPid) };
  }
  const failed = /^err (\d+) (\w+)$/.exec(line);
  if (failed) {
    const errno = Number(failed[1]);
    const name = Object.entries(osConstants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
    const error = new InternalError(
      `${name} (${failed[2] === "exec" ? "exec" : `holder: ${failed[2]}`})`,
    ) as NodeJS.ErrnoException;
    error.code = name;
    throw error;
  }
  throw new InternalError(`the session holder did not start: ${(line || stderr.trim() || "no answer").slice(0, 200)}`);
}

/** Text gathered from a stream, at most {@link HOLDER_ANSWER_MAX_BYTES}. */
function boundedText(): { push: (chunk: Buffer) => void; text: () => string } {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    push: (chunk) => {
      if (size >= HOLDER_ANSWER_MAX_BYTES) return;
      chunks.push(chunk.subarray(0, HOLDER_ANSWER_MAX_BYTES - size));
      size += chunk.length;
    },
    text: () => Buffer.concat(chunks).toString("utf8"),
  };
}

function socketName(sessionId: string): string {
  return `${sessionId}.sock`;
}

/** The holder's spec: NUL-separated fields (native/holder.c, `parse_spec`). */
function encodeSpec(spec: HolderSpec): Buffer {
  const env = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`);
  const fields = [
    "SBH1",
    spec.pty ? "1" : "0",
    String(spec.cols),
    String(spec.rows),
    String(spec.drainTimeoutMs),
    spec.cwd,
    String(spec.command.length),
    ...spec.command,
    String(env.length),
    ...env,
  ];
  return Buffer.from(fields.map((f) => `${f}\0`).join(""));
}
