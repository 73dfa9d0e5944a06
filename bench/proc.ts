/** What /proc says of a process the benches measure, and when a `serve` child listens. */
import type { ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Run time of every thread of `pid`, ms (schedstat's nanoseconds: stat's 10 ms ticks are too coarse). */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch (error) {
      // A thread that ended between the listing and the read: its time is gone from both readings.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  return ns / 1e6;
}

/** How long a `serve` child may take to listen before a bench gives up on it. */
const LISTEN_WAIT_MS = 60_000;

/**
 * The URL a `switchboard serve` child prints once it listens (its stdout piped); rejects if it
 * exits first or takes over {@link LISTEN_WAIT_MS}, with what it printed and `stderr()`. Its
 * stdout is read on after, so it never fills.
 */
export function listeningUrl(child: ChildProcess, name: string, stderr: () => string = () => ""): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = "";
    const failed = (why: string) => () => reject(new Error(`serve ${name} ${why}: ${out}${stderr()}`));
    const timer = setTimeout(failed(`did not listen within ${LISTEN_WAIT_MS} ms`), LISTEN_WAIT_MS);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /switchboard listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      failed(`exited (${code ?? signal})`)();
    });
  });
}
