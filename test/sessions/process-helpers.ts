import { readFileSync, readdirSync } from "node:fs";
import { afterEach } from "vitest";
import { spawnTerminalProcess } from "../../src/sessions/terminal-process.js";
import type { TerminalExit, TerminalProcessOptions } from "../../src/sessions/process-transport.js";
import type { TerminalProcess } from "../../src/sessions/terminal-process.js";
import type { OutputStream } from "../../src/protocol/events.js";

/** A spawned process with everything it printed, per stream and in arrival order. */
export interface Watched {
  proc: TerminalProcess;
  /** Every chunk as received. */
  chunks: Array<{ stream: OutputStream; bytes: Buffer }>;
  /** Output of one stream (all streams when omitted) as bytes. */
  bytes(stream?: OutputStream): Buffer;
  text(stream?: OutputStream): string;
  /** Resolves with the exit passed to onExit. */
  exit: Promise<TerminalExit>;
  /** Set when output arrived after onExit: the guarantee under test. */
  outputAfterExit: boolean;
  /** Resolves once the combined text matches. Rejects after `ms`. */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
}

const WAIT_FOR_MS = 5_000;

/**
 * A small, fixed environment. SHLVL keeps bash from sourcing ~/.bashrc: with a socket as
 * stdin (Node's stdio pipes are socketpairs) and no SHLVL, bash assumes it runs under sshd.
 */
export const TEST_ENV: Readonly<Record<string, string>> = {
  PATH: process.env["PATH"] ?? "/usr/bin:/bin",
  LANG: "C.UTF-8",
  SHLVL: "1",
  HOME: process.env["HOME"] ?? "/",
};
const live = new Set<TerminalProcess>();

afterEach(() => {
  for (const proc of live) proc.dispose();
  live.clear();
});

/** Spawns with PATH from the test's environment; disposed after the test. */
export function watch(
  options: Omit<TerminalProcessOptions, "onOutput" | "onExit" | "env" | "cwd"> &
    Partial<Pick<TerminalProcessOptions, "env" | "cwd">>,
): Watched {
  const chunks: Watched["chunks"] = [];
  const waiters = new Set<() => void>();
  let exited = false;
  let resolveExit!: (exit: TerminalExit) => void;
  const watched: Watched = {
    chunks,
    bytes: (stream) =>
      Buffer.concat(chunks.filter((c) => stream === undefined || c.stream === stream).map((c) => c.bytes)),
    text: (stream) => watched.bytes(stream).toString("utf8"),
    exit: new Promise((resolve) => (resolveExit = resolve)),
    outputAfterExit: false,
    waitFor: (pattern, ms = WAIT_FOR_MS) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (!pattern.test(watched.text())) return false;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${pattern}; output so far: ${JSON.stringify(watched.text())}`));
        }, ms);
        if (!check()) waiters.add(check);
      }),
    proc: undefined as unknown as TerminalProcess,
  };
  watched.proc = spawnTerminalProcess({
    cwd: process.cwd(),
    env: TEST_ENV,
    ...options,
    onOutput: (stream, chunk) => {
      if (exited) watched.outputAfterExit = true;
      chunks.push({ stream, bytes: Buffer.from(chunk) });
      for (const check of [...waiters]) check();
    },
    onExit: (exit) => {
      exited = true;
      resolveExit(exit);
    },
  });
  live.add(watched.proc);
  return watched;
}

/** True while a process with this pid exists (zombies included). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/**
 * The pid of the process running exactly `cmdline` as the foreground job of the terminal of the
 * session `leader` leads (a PTY session's process: its pid), from /proc; undefined while there is
 * none. A job started by an interactive shell leads a process group of its own, which holds the
 * terminal once the shell has handed it over: only then does ^C reach the job.
 */
export function foregroundJob(leader: number, cmdline: string): number | undefined {
  const found = readdirSync("/proc").find((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    let command: string;
    let stat: string;
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    } catch {
      // The process exited between the listing and the read: not the one looked for.
      return false;
    }
    // proc(5): after the command in parentheses come state, ppid, pgrp, session, tty_nr, tpgid.
    const [, , pgrp, session, , tpgid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (
      command.replaceAll("\0", " ").trim() === cmdline && session === String(leader) && pgrp === pid && tpgid === pid
    );
  });
  return found === undefined ? undefined : Number(found);
}
