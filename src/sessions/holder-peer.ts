import type { Socket } from "node:net";
import { loadAddon } from "../system/native-addon.js";
import { processStartTime } from "./processes.js";

/*
 * Whether the process at the other end of a holder's socket is the holder the session's record
 * names. A holder's socket is a path in DATA_DIR/holders that any process of this uid may unlink
 * and bind again: the HELLO's pids are only what the peer says, so the gateway asks the kernel
 * (SO_PEERCRED, native/peer_cred.c) and compares the peer's pid and start time with the record's
 * before it logs a byte the peer sends or gives it input. docs/architecture.md, "Session holders";
 * test/sessions/holder-peer.test.ts.
 */

interface PeerCredAddon {
  peer(fd: number): { pid: number; uid: number; gid: number } | null;
}

const addon = loadAddon<PeerCredAddon>("peer_cred");

/** The holder a session's record names: its pid and `processStartTime` (ticks after boot) when it started. */
export interface HolderIdentity {
  pid: number;
  start: number | null;
}

/** Why a peer was not taken for the holder; `unverifiable`: the gateway could not tell (no addon, no record of the start). */
export type PeerRefusal = { kind: "impostor"; reason: string } | { kind: "unverifiable"; reason: string };

/** Whether this gateway can check holders' peers (native/peer_cred.c was built). */
export function canVerifyHolderPeers(): boolean {
  return addon !== null;
}

/**
 * Checks the peer of `socket` (connected) against `holder`: null when it is that process, else
 * why not. The start time tells the holder from a later process that got its pid.
 */
export function checkHolderPeer(socket: Socket, holder: HolderIdentity): PeerRefusal | null {
  if (addon === null)
    return {
      kind: "unverifiable",
      reason:
        "the gateway cannot check who answers on the holder's socket: build/Release/peer_cred.node is missing (npm run build needs a C compiler)",
    };
  if (holder.start === null)
    return { kind: "unverifiable", reason: `the record has no start time for holder pid ${holder.pid} to check it by` };
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  const peer = typeof fd === "number" && fd >= 0 ? addon.peer(fd) : null;
  if (peer === null) return { kind: "unverifiable", reason: "the kernel did not name the peer of the holder's socket" };
  if (peer.pid !== holder.pid)
    return {
      kind: "impostor",
      reason: `process ${peer.pid} answered on the holder's socket, not the holder (pid ${holder.pid}): it was refused`,
    };
  const start = processStartTime(peer.pid);
  if (start !== holder.start)
    return {
      kind: "impostor",
      reason: `process ${peer.pid} answered on the holder's socket but started at tick ${start ?? "?"}, not ${holder.start} as the holder did: it was refused`,
    };
  return null;
}
