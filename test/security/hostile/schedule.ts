// The hostile clients' schedule (docs/security.md, "Fuzzing": hostile clients beside honest ones):
// from one seed, which hostile action starts when and in which child process ("lane"). Actions of
// a lane start at their time whatever the previous ones are doing, so they overlap within a lane
// and across lanes. Pure: the same seed gives the same schedule.
import { Rng } from "../../cluster/nemesis/workload.js";

/** What a hostile client does (hostile-actions.ts and credential-actions.ts carry each out). */
export const HOSTILE_KINDS = [
  /** Random and malformed `/v1/ws` and `/ws/session` frames, as mallory. */
  "random-frames",
  /** Tens of thousands of one-byte input frames to mallory's own PTY. */
  "frame-flood",
  /** Subscribes from seq 0 to the 16 MiB session (and `/ws/session?since=0`) and stops reading. */
  "stalled-subscribe",
  /** Escape sequences that cost a terminal emulator dearly, written to mallory's own PTYs. */
  "hostile-escapes",
  /** The 16 MiB transcript (text, raw output or event pages) read as fast as it comes. */
  "big-download",
  /** A browser sign-in with sockets, SSE and a download streaming, then logged out. */
  "sign-out-midstream",
  /** A paired device with sockets, SSE and a download streaming, then unpaired by the admin. */
  "revoke-midstream",
] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

/**
 * The child processes hostile clients run in. Credential actions have one of their own: it
 * times when each connection ends, which a process busy flooding would observe late.
 */
export const LANES = ["wire", "output", "credentials"] as const;
export type Lane = (typeof LANES)[number];

const KINDS_OF: Record<Lane, readonly HostileKind[]> = {
  wire: ["random-frames", "frame-flood", "stalled-subscribe"],
  output: ["hostile-escapes", "hostile-escapes", "big-download"],
  credentials: ["sign-out-midstream", "revoke-midstream"],
};

/** Pause between two action starts within a lane, ms. */
const START_GAP_MS: readonly [number, number] = [600, 3_000];
/** Longest any one action runs (each action's own bounds keep it well inside). */
export const ACTION_MAX_MS = 8_000;

export interface HostileAction {
  /** Its place in the schedule, for the report. */
  id: number;
  kind: HostileKind;
  lane: Lane;
  /** When it starts, ms after the hostile phase began. */
  at: number;
  /** Seeds the action's own choices (sizes, payloads, delays). */
  seed: number;
}

/** The hostile actions of a run of `hostileMs` from `seed`, by start time. */
export function hostileSchedule(seed: number, hostileMs: number): HostileAction[] {
  const rng = new Rng(seed ^ 0x5eed);
  const actions: Omit<HostileAction, "id">[] = [];
  for (const lane of LANES) {
    // The last actions start early enough to end inside the phase.
    for (let at = rng.int(0, 800); at < hostileMs - 2_000; at += rng.int(...START_GAP_MS))
      actions.push({ kind: rng.pick(KINDS_OF[lane]), lane, at, seed: rng.int(1, 2 ** 31 - 1) });
  }
  return actions.sort((a, b) => a.at - b.at).map((a, id) => ({ id, ...a }));
}
