import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocketServer } from "ws";
import { LAG_MODES, LIMITS, ClientKey, SwitchboardError, TERMINAL_OUTPUT_MODES } from "../../protocol/index.js";
import type { LagMode, TerminalOutputMode, TerminalScreenFrame } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import { sessionFor } from "../identity/access.js";
import { refuseShareForce } from "../identity/share-access.js";
import { reclaimKeyOf, signInOf } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore } from "../context.js";
import { resolveSession } from "../cluster/session-resolver.js";
import { intParam, queryParam, requestUrl, toSwitchboardError } from "../http/http.js";
import { rejectUpgrade } from "../http/http.js";
import { viewerScreen } from "./screen-frame.js";
import { LastFrame } from "./outbound-frames.js";
import type { Frame } from "./outbound-frames.js";
import { ConnectionTracker, endpointServer, startConnection } from "./ws-common.js";
import { TerminalConnection } from "./terminal-connection.js";

/**
 * `/ws/session/:id[?since=BYTE|screen][&control=acquire|force][&output=binary][&lag=screen]`: one terminal, the steering
 * protocol proposed for OpenSandbox's execd (PR #455) — but any number of viewers may be
 * connected at once. Positions are byte offsets in the session's output. With `output=binary`
 * output travels as binary messages, the bytes as written (see `BINARY_OUTPUT_KINDS`).
 */
export class TerminalEndpoint {
  private readonly wss: WebSocketServer;
  private readonly tracker: ConnectionTracker;
  /** Shared by this endpoint's connections, one per output mode: see {@link LastFrame}. */
  private readonly lastFrames: Record<TerminalOutputMode, LastFrame<Frame[]>> = {
    json: new LastFrame<Frame[]>(),
    binary: new LastFrame<Frame[]>(),
  };

  constructor(private readonly core: GatewayCore) {
    this.wss = endpointServer(core);
    this.tracker = new ConnectionTracker(core, "terminal");
  }

  /**
   * Authenticates (401), finds the session (404) and checks `since` before upgrading. A `since`
   * past this node's copy of a remote session first waits for the copy (RemoteSession.reachOutput):
   * then it returns a promise, rejected with the refusal.
   */
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    authenticate: () => Identity,
  ): Promise<void> | undefined {
    const identity = authenticate();
    const url = requestUrl(req.url);
    let id: string;
    try {
      id = decodeURIComponent(url.pathname.slice("/ws/session/".length));
    } catch {
      // A malformed escape cannot name a session.
      throw new SwitchboardError("SESSION_NOT_FOUND", "no such session");
    }
    const discover = this.core.discover;
    if (discover !== undefined && this.core.sessions.get(id) === undefined)
      return discover(id).then(() => {
        if (socket.destroyed) return undefined;
        return this.upgradeTo(req, socket, head, identity, url, id);
      });
    return this.upgradeTo(req, socket, head, identity, url, id);
  }

  /** {@link handleUpgrade} once the session is listed here (or known not to exist). */
  private upgradeTo(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    identity: Identity,
    url: URL,
    id: string,
  ): Promise<void> | undefined {
    const session = sessionFor(this.core.sessions, identity, id, "see");
    // Empty is absent and a parameter given twice is BAD_REQUEST, as on every HTTP route.
    const sinceRaw = queryParam(url, "since");
    let since: number | undefined;
    if (sinceRaw !== null && sinceRaw !== "screen") {
      if (!/^\d{1,16}$/.test(sinceRaw)) throw new SwitchboardError("BAD_REQUEST", "since must be a byte offset");
      since = Number(sinceRaw);
    }
    const place = resolveSession(this.core.sessions, session);
    if (since !== undefined && place.behindOutput(since, session)) {
      const offset = since;
      return place.reachOutput(offset).then(() => {
        // The client gave up meanwhile: nothing to answer.
        if (socket.destroyed) return;
        // Looked up again: the session may have been removed meanwhile.
        const current = sessionFor(this.core.sessions, identity, id, "see");
        this.upgrade({ req, socket, head, identity, session: current, since: offset, url, screen: false });
      });
    }
    // Output this viewer saw before it was durable (held sessions): its commit, or a take-over's resend, first.
    const coming = since === undefined ? undefined : session.outputComing(since);
    if (coming !== undefined) {
      return coming.then(() => {
        if (socket.destroyed) return;
        const current = sessionFor(this.core.sessions, identity, id, "see");
        this.upgrade({ req, socket, head, identity, session: current, since, url, screen: false });
      });
    }
    this.upgrade({ req, socket, head, identity, session, since, url, screen: sinceRaw === "screen" });
    return undefined;
  }

  private upgrade(o: {
    req: IncomingMessage;
    socket: Duplex;
    head: Buffer;
    identity: Identity;
    session: Session;
    since: number | undefined;
    url: URL;
    /** `since=screen`: a screen frame first, then output from its offset. */
    screen: boolean;
  }): void {
    const { req, socket, head, identity, session, since, url } = o;
    const id = session.id;
    if (since !== undefined && since > session.log.outputBytes) {
      throw new SwitchboardError(
        "BAD_REQUEST",
        `since=${since} is past the end of the output (${session.log.outputBytes} bytes)`,
      );
    }
    const controlParam = queryParam(url, "control");
    if (controlParam !== null && controlParam !== "acquire" && controlParam !== "force") {
      throw new SwitchboardError("BAD_REQUEST", "control must be acquire or force");
    }
    if (controlParam !== null) {
      sessionFor(this.core.sessions, identity, id, "control");
      refuseShareForce(identity, controlParam === "force");
    }
    const clientKeyParam = queryParam(url, "clientKey");
    if (clientKeyParam !== null && !ClientKey.safeParse(clientKeyParam).success)
      throw new SwitchboardError("BAD_REQUEST", "clientKey must be 16 to 128 of A-Z a-z 0-9 _ -");
    const reclaimKey = clientKeyParam === null ? undefined : reclaimKeyOf(identity, signInOf(req), clientKeyParam);
    const outputParam = queryParam(url, "output") ?? "json";
    if (!(TERMINAL_OUTPUT_MODES as readonly string[]).includes(outputParam)) {
      throw new SwitchboardError("BAD_REQUEST", `output must be ${TERMINAL_OUTPUT_MODES.join(" or ")}`);
    }
    const output = outputParam as TerminalOutputMode;
    const lagParam = queryParam(url, "lag");
    if (lagParam !== null && !(LAG_MODES as readonly string[]).includes(lagParam)) {
      throw new SwitchboardError("BAD_REQUEST", `lag must be ${LAG_MODES.join(" or ")}`);
    }
    // A session without a PTY has no screen to skip to: its viewers get every byte.
    const lag = session.record.pty ? (lagParam as LagMode | null) : null;
    // The viewer's size for `since=screen` (the PTY's when absent), as on GET .../screen.
    const cols = intParam(url, "cols", 0, LIMITS.MAX_COLS, 1);
    const rows = intParam(url, "rows", 0, LIMITS.MAX_ROWS, 1);
    const size = { cols: cols === 0 ? undefined : cols, rows: rows === 0 ? undefined : rows };
    this.tracker.checkLimit(identity);
    const upgrade = (screen: TerminalScreenFrame | undefined) =>
      this.wss.handleUpgrade(req, socket, head, (ws) =>
        startConnection(this.core, "terminal", ws, () => {
          const conn = new TerminalConnection(this.core, ws, identity, session, {
            since: screen?.offset ?? since,
            screen,
            control: { mode: controlParam, reclaimKey },
            output,
            lastFrame: this.lastFrames[output],
            lag: lag === "screen" ? size : undefined,
          });
          this.tracker.add(
            { identity, signIn: signInOf(req) },
            ws,
            (closedByClient) => conn.dispose(closedByClient),
            (why) => conn.revoke(why),
          );
        }),
      );
    if (!o.screen) return upgrade(undefined);
    // The screen is parsed before the upgrade: a session without a PTY is refused as GET .../screen refuses it.
    viewerScreen(this.core, session, size)
      .then(
        (screen) => upgrade(screen.frame),
        (error: unknown) => {
          const refusal = toSwitchboardError(error);
          this.core.metrics.wsRefused.inc({ code: refusal.code });
          rejectUpgrade(socket, refusal);
        },
      )
      .catch((error: unknown) => this.core.logger.error({ err: error }, "terminal upgrade failed"));
  }

  /** `restarting`: see ConnectionTracker.closeAll. */
  close(restarting = false): void {
    this.tracker.closeAll(restarting);
    this.wss.close();
  }
}
