import { readFileSync, readdirSync } from "node:fs";

/*
 * The processes of a session as Linux shows them in /proc, and signals to them: what a
 * terminal's lifecycle (terminal-process.ts) and a restart after a crash (terminal-session.ts)
 * need beyond the child's own pid. Elsewhere /proc does not exist and these find nothing.
 */

/** Fields of `/proc/PID/stat` after the command name, from the state on (Linux); null if unreadable. */
export function procStat(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  // The command name is in parentheses and may hold anything, parentheses and spaces too.
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** Indexes into {@link procStat}'s fields (proc(5): state is field 3). */
export const STAT_SESSION = 3;
export const STAT_TPGID = 5;
const STAT_STARTTIME = 19;

/**
 * When process `pid` started (clock ticks after boot, from `/proc`), or null where that cannot
 * be read: with the pid, it names one process for good — a pid alone may be reused.
 */
export function processStartTime(pid: number): number | null {
  const start = Number(procStat(pid)?.[STAT_STARTTIME]);
  return Number.isFinite(start) ? start : null;
}

/**
 * Terminates what is left of a session's process after the gateway died under it: a pipe
 * child that does not write lives on (only a PTY's hangup or a write to the closed pipe would
 * end it), and nobody can steer it any more. Acts only when `pid` is still the same process
 * (`startTime` matches) and leads its own session; then TERM (and CONT) to every process of
 * that session, KILL after `graceMs` to those left. Returns how many processes were signalled.
 */
export function terminateLeftovers(pid: number, startTime: number, graceMs: number): number {
  const stat = procStat(pid);
  if (stat === null || Number(stat[STAT_STARTTIME]) !== startTime || Number(stat[STAT_SESSION]) !== pid) return 0;
  const members = sessionMembers(pid);
  for (const member of members) {
    signalProcess(member, "SIGTERM");
    signalProcess(member, "SIGCONT");
  }
  setTimeout(() => {
    for (const member of sessionMembers(pid)) signalProcess(member, "SIGKILL");
  }, graceMs).unref();
  return members.length;
}

/**
 * Every process of session `sid` (Linux, from `/proc`; elsewhere none): the jobs a shell
 * started in groups of their own, which a KILL to its group does not reach. A session id
 * cannot be reused while any process is still in that session, so the list holds no strangers.
 */
export function sessionMembers(sid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (Number(procStat(pid)?.[STAT_SESSION]) === sid) members.push(pid);
  }
  return members;
}

/** `kill(-pid, signal)`. Returns false when no process of the group is left (ESRCH). */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  return signalProcess(-pid, signal);
}

/** `kill(pid, signal)`. Returns false when there is no such process (ESRCH). */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}
