// What a hostile child process is told at start (one JSON line on its stdin): where the gateway
// is, the credentials hostile clients use, and the sessions they aim at. A leaf module: the run
// (run.ts) and the children (actor.ts) both import it.
import type { HostileAction, HostileKind, Lane } from "./schedule.js";

/** The identities of a run's gateway: honest operators, the hostile ones, and what each may see. */
export const HOSTILE_TOKENS = {
  alice: "hostile-alice-3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c8e",
  bob: "hostile-bob-8e2d6a4c1f9b7e3a5d0c8f2b6e4a1d9c",
  /** The attacker's bearer token: floods, frames, escapes, downloads. */
  mallory: "hostile-mallory-1c7f3e9a5b8d2c6f0a4e7b1d9c3f5a8e",
  /** Signs in as a browser and is signed out mid-stream. */
  trudy: "hostile-trudy-6a0d4c8f2e7b1a5d9c3f8e2a6b0d4c7f",
} as const;

/** Sessions the hostile clients aim at, by role (ids). */
export interface HostileSessions {
  /** A stream session of {@link BIG_SESSION_BYTES} of output: downloads and subscribe-from-0. */
  big: string;
  /** A PTY printing a line every 50 ms: what signed-in sockets and SSE follow until they are cut. */
  ticker: string;
  /** A raw `cat` PTY the floods write to. */
  term: string;
  /** A raw `cat` PTY random frames aim at (they may well signal it to death). */
  frames: string;
  /** Raw `cat` PTYs hostile escapes are written to (echoed back as their output). */
  escapes: string[];
  /** The honest operators' sessions: every frame of mallory's aimed there must be refused. */
  honest: string[];
}

/**
 * Output bytes of the big session: more than a connection's kernel buffers hold, and 8 s of the
 * credential actions' slow download.
 */
export const BIG_SESSION_BYTES = 16 * 1024 * 1024;

export interface ActorInput {
  lane: Lane;
  url: string;
  /** The gateway's admin token (it makes pairing codes and unpairs devices). */
  admin: string;
  sessions: HostileSessions;
  actions: HostileAction[];
}

/** What a hostile child reports on its stdout, one JSON line each. */
export type ActorReport =
  | { type: "ready" }
  /** `at`: when it started (ms since the epoch); `ms`: how long it ran. */
  | { type: "action"; id: number; kind: HostileKind; at: number; ms: number; note: string }
  | { type: "credential"; record: CredentialRecord }
  | { type: "failed"; id: number; kind: HostileKind; error: string };

/** One connection of a credential that was signed out or revoked while it streamed. */
export interface CutConnection {
  transport: "v1-ws" | "ws-session" | "sse" | "download";
  /**
   * `open`: streaming when the credential was ended; `refused`: never opened (a refusal, say the
   * answer budget); `ended-before`: it ended before the credential did.
   */
  state: "open" | "refused" | "ended-before";
  /**
   * When the gateway closed it (server-socket.ts), ms after the sign-out or revoke was answered;
   * null: still open when the watch gave up (CUT_WATCH_MS).
   */
  endedAfterMs: number | null;
  note?: string;
}

/** A credential ended mid-stream and what became of its connections. */
export interface CredentialRecord {
  action: number;
  how: "sign-out" | "revoke-token" | "revoke-sign-in";
  /** The status the sign-out or revoke was answered with. */
  status: number;
  connections: CutConnection[];
  /** The credential's `GET /v1/whoami` status after it was ended (a refusal expected: 401). */
  whoamiAfter: number;
}
