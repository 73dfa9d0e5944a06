/** What /proc says of a process the benches measure. */
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
