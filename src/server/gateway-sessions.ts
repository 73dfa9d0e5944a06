// The start step that rebuilds the sessions from the log (and, in cluster mode, follows other
// nodes' sessions and takes over a dead one's): apart from the wiring in gateway.ts.
import { DEFAULT_RECONNECT_GRACE_MS } from "../core/control-lease.js";
import type { SessionLog } from "../log/session-log.js";
import type { Membership } from "../cluster/membership.js";
import { idleLookMs } from "../cluster/node-lease.js";
import { restoreAgentSession } from "../sessions/agent-gateway-session.js";
import type { Session, SessionContext, SessionRecord } from "../sessions/session.js";
import { canVerifyHolderPeers } from "../sessions/holder-peer.js";
import { Holders, holderBinary } from "../sessions/holders.js";
import { SessionManager } from "../sessions/session-manager.js";
import { resolveSession } from "./cluster/session-resolver.js";
import { StreamSession } from "../sessions/stream-session.js";
import { TerminalSession, restoreTerminalSession } from "../sessions/terminal-session.js";
import { ClusterMirror } from "./cluster/cluster-mirror.js";
import { CopyGate } from "./cluster/copy-gate.js";
import { stopFencedSession } from "./cluster/cluster-mode.js";
import { watchMembers } from "./cluster/cluster-takeover.js";
import { DEFAULT_AUTO_RELEASE_MS } from "./config/config.js";
import type { OpenLog } from "./gateway-log.js";
import type { Base } from "./config/gateway-options.js";

export interface RestoredSessions {
  manager: SessionManager;
  /** Cluster mode: follows the sessions other nodes own. */
  mirror: ClusterMirror | undefined;
  /** Cluster mode: the nodes, and the takeover of a dead one's sessions. */
  membership: Membership | undefined;
}

/**
 * The holders of terminal and agent sessions (holders.ts), when on: `serve --holders`, else
 * `sessions.holders`, else the gateway's default (`serve`: on). Without the built holder, or the
 * addon that checks a holder's peer (native/peer_cred.c), they are off, with a warning. In cluster mode a restart within the node's lease TTL keeps its held
 * sessions (docs/cluster.md, "Held sessions").
 */
function openHolders(base: Base): Holders | undefined {
  const { config, options, logger, metrics, dataDir } = base;
  const wanted = options.holders ?? config.sessions.holders ?? options.holdersByDefault ?? false;
  if (!wanted) return undefined;
  const binary = holderBinary();
  if (binary === null) {
    logger.warn(
      "sessions run without holders: build/Release/holder is missing (npm run build needs a C compiler); they end with the gateway",
    );
    return undefined;
  }
  if (!canVerifyHolderPeers()) {
    logger.warn(
      "sessions run without holders: build/Release/peer_cred.node is missing (npm run build needs a C compiler), so this gateway could not tell a holder from a process posing as one; they end with the gateway",
    );
    return undefined;
  }
  return new Holders({
    dataDir,
    binary,
    onStop: config.sessions.onStop ?? "keep",
    onAdopted: (session) => {
      metrics.sessionsAdopted.inc();
      logger.info(
        { session: session.id, pid: session.pid, holderPid: session.holder?.pid },
        "session adopted from its holder",
      );
    },
    onRefused: (session, refusal) => {
      logger.warn(
        { session: session.id, pid: session.pid, holderPid: session.holder?.pid, refusal: refusal.kind },
        `held session lost: ${refusal.reason}`,
      );
    },
  });
}

/**
 * Cluster mode, at start: the held processes of sessions this node does not run (another node
 * took them over while it was down past its lease, or Redis no longer has them) are ended — one
 * owner only. Their holders end them once their sockets are gone.
 */
function endHeldElsewhere(holders: Holders, sessions: SessionManager, logger: Base["logger"]): void {
  for (const [sessionId, names] of holders.heldSessionIds()) {
    const session = sessions.get(sessionId);
    const owner = resolveSession(sessions, session).owner;
    if (session !== undefined && owner === undefined) continue;
    for (const name of names) holders.end(name);
    logger.warn(
      { session: sessionId, owner: owner ?? null },
      "held session fenced: another node owns it now (or none does), so its held process was ended",
    );
  }
}

/** Builds the session manager and restores the logged sessions (other nodes' as remote ones). */
export async function restoreSessions(base: Base, log: OpenLog): Promise<RestoredSessions> {
  const { undo, clock, logger, metrics, config, limits } = base;
  const { cluster, shared, events } = log;
  const holders = openHolders(base);
  const sessions = new SessionManager({
    events,
    clock,
    autoReleaseAfterMs: config.control.autoReleaseAfterMs ?? DEFAULT_AUTO_RELEASE_MS,
    reconnectGraceMs: config.control.reconnectGraceMs ?? DEFAULT_RECONNECT_GRACE_MS,
    maxSessions: limits.sessions,
    maxSessionsPerOwner: limits.sessionsPerToken,
    ...(holders !== undefined ? { holders } : {}),
    ...(config.sessions.quietAfterMs !== undefined ? { quietAfterMs: config.sessions.quietAfterMs } : {}),
    ...(shared !== undefined ? { ownership: (id: string) => shared.ownerships.of(id) } : {}),
  });
  const mirror =
    cluster && shared
      ? new ClusterMirror({
          redis: cluster.redis,
          log: cluster.log,
          store: shared,
          events,
          sessions,
          nodeId: cluster.settings.nodeId,
          keyPrefix: cluster.settings.keyPrefix,
          clock,
          logger,
          idleSweepMs: idleLookMs(cluster.ttlMs),
          gate: new CopyGate(base.catchUp),
        })
      : undefined;
  log.setOnFenced((sessionId, error) =>
    stopFencedSession({ sessions, logger, follow: (id, owner) => mirror!.follow(id, owner) }, sessionId, error),
  );
  await mirror?.prepare();
  const build = (record: SessionRecord, sessionLog: SessionLog, ctx: SessionContext): Session => {
    switch (record.kind) {
      case "stream":
        return new StreamSession(record, sessionLog, ctx);
      case "agent":
        return restoreAgentSession(record, sessionLog, ctx);
      case "terminal":
        return restoreTerminalSession(record, sessionLog, ctx);
    }
  };
  sessions.restore((record, sessionLog, ctx) => {
    const owner = shared?.ownerships.ownerOf(record.id);
    if (owner !== undefined) return mirror!.restored(record, sessionLog, ctx, owner);
    return build(record, sessionLog, ctx);
  });
  if (holders !== undefined && mirror !== undefined) endHeldElsewhere(holders, sessions, logger);
  // What the restore appended (sessions marked lost) is durable, and so readable, before anyone connects.
  events.flush();
  let membership: Membership | undefined;
  if (mirror) {
    undo.push(() => mirror.close());
    await mirror.start();
    const watching = watchMembers({ cluster: cluster!, store: shared!, sessions, clock, logger, build });
    membership = watching;
    const unwatch = sessions.onChange(() => {
      watching.wake();
      cluster!.lease.wake();
    });
    undo.push(() => {
      unwatch();
      return watching.close();
    });
  }
  undo.push(() => sessions.close());
  if (holders !== undefined) undo.push(() => holders.close());
  metrics.observeSessions(() => sessions.list().map((s) => s.record));
  metrics.observeHeldBytes(() => {
    let held = 0;
    for (const s of sessions.list()) if (s instanceof TerminalSession) held += s.heldOutputBytes;
    return held;
  });
  return { manager: sessions, mirror, membership };
}
