import type {
  AgentState,
  ChangesAnswer,
  DeviceListing,
  Pairing,
  PairingAddress,
  PairingRequest,
  PromptRequest,
  PushSubscriptionBody,
  ScreenAnswer,
  SessionEvent,
  SessionInfo,
  ShareCreated,
  ShareListing,
  ShareRequest,
  ShareScope,
  SignalName,
  TurnsPage,
  FileUploaded,
  WorktreeDiff,
  WorktreeStatus,
} from "../protocol/index.js";
import type { PermissionPolicyInput, PolicyInForce, PolicyPreviewRow, SearchAnswer } from "../protocol/index.js";
import { LIMITS } from "../protocol/limits.js";
import { encodeBase64 } from "../core/utf8-chunker.js";
import type { AbortOptions } from "./abort.js";
import { ConnectionError } from "./errors.js";
import { inputError } from "./input-size.js";
import type { Delivery, InboundMessage, RouteResult } from "./messages.js";
import type { GatewayTarget } from "./transport.js";
import { rawBody, request, requestJson } from "./http-request.js";
import type { HttpEndpoint } from "./http-request.js";
import type {
  CreateSessionRequest,
  AppendEventInput,
  AgentListing,
  PluginListing,
  NodeListing,
  AbortResult,
  EventsQuery,
  EventsPage,
  TurnsQuery,
  AppendedEvents,
  SessionsQuery,
  SessionsPageQuery,
  SessionsPage,
  OutputChunk,
  DiskUsageAnswer,
} from "./http-types.js";

export type {
  CreateSessionRequest,
  AppendEventInput,
  AgentListing,
  PluginListing,
  NodeListing,
  AbortResult,
  EventsQuery,
  EventsPage,
  TurnsQuery,
  AppendedEvents,
  SessionsQuery,
  SessionsPageQuery,
  SessionsPage,
  OutputChunk,
  DiskUsageAnswer,
} from "./http-types.js";

/** An HTTP request that has not answered after this long fails with TIMEOUT. */
export const HTTP_TIMEOUT_MS = 30_000;

export interface HttpClientOptions extends GatewayTarget {
  /** Default {@link HTTP_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * The gateway's HTTP API (docs/protocol.md, "HTTP routes"), typed. Methods reject with a
 * {@link SwitchboardError} with the gateway's code, or a {@link ConnectionError} (`UNREACHABLE`,
 * `TIMEOUT`, `BAD_RESPONSE`); each takes `{signal}` as `fetch` does (aborting does not undo).
 * @example
 * const http = new HttpClient({ url: "http://127.0.0.1:7317", token });
 * const session = await http.createSession({ command: ["bash", "-l"], pty: true });
 */
export class HttpClient {
  private readonly endpoint: HttpEndpoint;

  constructor(options: HttpClientOptions) {
    this.endpoint = { target: options, timeoutMs: options.timeoutMs ?? HTTP_TIMEOUT_MS };
  }

  createSession(body: CreateSessionRequest, options: AbortOptions = {}): Promise<SessionInfo> {
    return this.json("POST", "/v1/sessions", options.signal, body);
  }

  /**
   * Every session the token may see (in `state`, when given), in creation order: all pages of
   * `GET /v1/sessions`, followed with `next`. A session created while the pages are read is
   * included; one removed meanwhile may be.
   *
   * @example
   * const running = await http.listSessions({ state: "running" });
   */
  async listSessions(options: SessionsQuery & AbortOptions = {}): Promise<SessionInfo[]> {
    const all: SessionInfo[] = [];
    for await (const session of this.allSessions(options)) all.push(session);
    return all;
  }

  /** {@link listSessions} one session at a time, a page (1000) read at a time. */
  async *allSessions(options: SessionsQuery & AbortOptions = {}): AsyncGenerator<SessionInfo, void, undefined> {
    let after: string | undefined;
    for (;;) {
      const page = await this.sessionsPage({
        ...options,
        limit: LIMITS.SESSIONS_PAGE_MAX,
        ...(after !== undefined ? { after } : {}),
      });
      yield* page.sessions;
      if (page.next === undefined) return;
      // A gateway that answers the same cursor again would keep this loop going forever.
      if (page.next === after) {
        throw new ConnectionError("BAD_RESPONSE", "GET /v1/sessions: the gateway answered the same next twice");
      }
      after = page.next;
    }
  }

  /**
   * One page of `GET /v1/sessions`: at most `limit` sessions after the cursor `after`, and
   * `next` when there are more. (A gateway older than paging answers every session, without
   * `next`.)
   */
  sessionsPage(query: SessionsPageQuery & AbortOptions = {}): Promise<SessionsPage> {
    const params = new URLSearchParams();
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    if (query.after !== undefined) params.set("after", query.after);
    if (query.state !== undefined) {
      params.set("state", (typeof query.state === "string" ? [query.state] : query.state).join(","));
    }
    const qs = params.toString();
    return this.json("GET", `/v1/sessions${qs ? `?${qs}` : ""}`, query.signal);
  }

  /** The agents `{kind: "agent", agent: id}` accepts: built in, configured, or registered by plugins. */
  async listAgents(options: AbortOptions = {}): Promise<AgentListing[]> {
    const { agents } = await this.json<{ agents: AgentListing[] }>("GET", "/v1/agents", options.signal);
    return agents;
  }

  /** The configured plugins, by id, with their states. */
  async listPlugins(options: AbortOptions = {}): Promise<PluginListing[]> {
    const { plugins } = await this.json<{ plugins: PluginListing[] }>("GET", "/v1/plugins", options.signal);
    return plugins;
  }

  /** One plugin's state; `PLUGIN_NOT_FOUND` when the config has no such plugin. */
  getPlugin(id: string, options: AbortOptions = {}): Promise<PluginListing> {
    return this.json("GET", `/v1/plugins/${encodeURIComponent(id)}`, options.signal);
  }

  /**
   * Stops a plugin and starts it afresh, its restart count reset (a `failed` one too); resolves
   * with its state once it runs or failed to start. Admins only (`FORBIDDEN`).
   */
  restartPlugin(id: string, options: AbortOptions = {}): Promise<PluginListing> {
    return this.json("POST", `/v1/plugins/${encodeURIComponent(id)}/restart`, options.signal);
  }

  /**
   * Full-text search over the sessions this token may see (output, messages, prompts, tool
   * calls): every word of `q` must match, a trailing `*` a prefix; hits newest first with session,
   * seq and snippet; `next` is the next page's `cursor`; `partial` names nodes that did not answer.
   * @example
   * const { hits } = await http.search("ECONNREFUSED", { limit: 10 });
   */
  search(
    q: string,
    query: { limit?: number; cursor?: string; session?: string } & AbortOptions = {},
  ): Promise<SearchAnswer> {
    const params = new URLSearchParams({ q });
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    if (query.cursor !== undefined) params.set("cursor", query.cursor);
    if (query.session !== undefined) params.set("session", query.session);
    return this.json("GET", `/v1/search?${params.toString()}`, query.signal);
  }

  /**
   * The cluster's nodes, each with its sessions and last heartbeat; empty on a gateway that is
   * not in cluster mode. Admins only (`FORBIDDEN`).
   */
  async listNodes(options: AbortOptions = {}): Promise<NodeListing[]> {
    const { nodes } = await this.json<{ nodes: NodeListing[] }>("GET", "/v1/nodes", options.signal);
    return nodes;
  }

  /**
   * A one-time pairing code for a new device (admins only): open `path` (or `url`, given `base`)
   * on the device before `expiresAt`. `switchboard pair` shows it as a QR code.
   */
  createPairing(body: PairingRequest = {}, options: AbortOptions = {}): Promise<Pairing> {
    return this.json("POST", "/v1/devices/pairings", options.signal, body);
  }

  /**
   * Where a device may open the gateway (admins only): the listen address, the machine's LAN
   * addresses when it listens on every one, `allowedHosts` names, its Tailscale name; each with
   * whether another device can reach it and whether it is a secure origin (Web Push needs one).
   */
  async pairingAddresses(options: AbortOptions = {}): Promise<PairingAddress[]> {
    const { addresses } = await this.json<{ addresses: PairingAddress[] }>(
      "GET",
      "/v1/devices/addresses",
      options.signal,
    );
    return addresses;
  }

  /** The paired devices (admins only). */
  async listDevices(options: AbortOptions = {}): Promise<DeviceListing[]> {
    const { devices } = await this.json<{ devices: DeviceListing[] }>("GET", "/v1/devices", options.signal);
    return devices;
  }

  /** Unpairs a device: its credential stops working and its connections close (admins only). */
  revokeDevice(id: string, options: AbortOptions = {}): Promise<DeviceListing> {
    return this.json("DELETE", `/v1/devices/${encodeURIComponent(id)}`, options.signal);
  }

  /**
   * A share link for session `id` (admins and the session's operators): `url` to send a teammate,
   * `token` the same secret for API clients; read-only unless `allowControl`, until `expiresAt`.
   *
   * @example
   * const { url } = await http.createShare(id, { name: "alex", ttlMs: 3_600_000 });
   */
  createShare(id: string, body: ShareRequest = {}, options: AbortOptions = {}): Promise<ShareCreated> {
    return this.json("POST", `${sessionPath(id)}/shares`, options.signal, body);
  }

  /** The live share links of session `id`, without their secrets. */
  async listShares(id: string, options: AbortOptions = {}): Promise<ShareListing[]> {
    const { shares } = await this.json<{ shares: ShareListing[] }>("GET", `${sessionPath(id)}/shares`, options.signal);
    return shares;
  }

  /** Revokes a share link: its secret stops working and its connections close within a second. */
  revokeShare(id: string, shareId: string, options: AbortOptions = {}): Promise<ShareListing> {
    return this.json("DELETE", `${sessionPath(id)}/shares/${encodeURIComponent(shareId)}`, options.signal);
  }

  /** The gateway's VAPID public key (base64url): a browser subscribes to Web Push with it. */
  async pushKey(options: AbortOptions = {}): Promise<string> {
    const { publicKey } = await this.json<{ publicKey: string }>("GET", "/v1/push/key", options.signal);
    return publicKey;
  }

  /**
   * Sends this identity's notifications to a browser's push subscription too (`PushSubscription.toJSON()`):
   * permission requests (with Allow / Reject when it may answer), finished runs, ended sessions.
   */
  async subscribePush(subscription: PushSubscriptionBody, options: AbortOptions = {}): Promise<void> {
    await this.json("POST", "/v1/push/subscriptions", options.signal, subscription);
  }

  /** Sends a test notification to this sign-in's push subscriptions (a token: all of its identity's); how many. */
  async testPush(options: AbortOptions = {}): Promise<number> {
    const { sent } = await this.json<{ sent: number }>("POST", "/v1/push/test", options.signal, {});
    return sent;
  }

  /** Stops notifications to the subscription at `endpoint`; true when this identity had it. */
  async unsubscribePush(endpoint: string, options: AbortOptions = {}): Promise<boolean> {
    const { removed } = await this.json<{ removed: boolean }>("DELETE", "/v1/push/subscriptions", options.signal, {
      endpoint,
    });
    return removed;
  }

  getSession(id: string, options: AbortOptions = {}): Promise<SessionInfo> {
    return this.json("GET", sessionPath(id), options.signal);
  }

  /**
   * Terminates the session (TERM, then KILL after a grace period); resolves with its final state.
   * `removeWorktree`: then removes its git worktree (WORKTREE_DIRTY, before anything stops, while
   * it has uncommitted work, unless `discardChanges`).
   */
  deleteSession(id: string, options: WorktreeRemoval & AbortOptions = {}): Promise<SessionInfo> {
    return this.json("DELETE", `${sessionPath(id)}${worktreeQuery(options, "?")}`, options.signal);
  }

  /**
   * Removes the session for good: deletes its record and log, and those of its child sessions.
   * A running session is refused (SESSION_RUNNING) unless `force`: then it is terminated first.
   * Resolves with every session removed, `id` last. `removeWorktree` as {@link deleteSession}.
   */
  async removeSession(
    id: string,
    options: { force?: boolean } & WorktreeRemoval & AbortOptions = {},
  ): Promise<SessionInfo[]> {
    const query = (options.force === true ? "?purge=true&force=true" : "?purge=true") + worktreeQuery(options, "&");
    const { removed } = await this.json<{ removed: SessionInfo[] }>(
      "DELETE",
      `${sessionPath(id)}${query}`,
      options.signal,
    );
    return removed;
  }

  /** A worktree session's branch, uncommitted changes and commits ahead of its base (docs/protocol.md, "Worktrees"). */
  worktree(id: string, options: AbortOptions = {}): Promise<WorktreeStatus> {
    return this.json("GET", `${sessionPath(id)}/worktree`, options.signal);
  }

  /** A worktree session's diff against where it forked from its base, per file. */
  worktreeDiff(id: string, options: AbortOptions = {}): Promise<WorktreeDiff> {
    return this.json("GET", `${sessionPath(id)}/worktree/diff`, options.signal);
  }

  /**
   * Uploads `body` to `path` (relative) in the session's working directory (docs/protocol.md,
   * "Files"): at most FILE_UPLOAD_MAX_BYTES; logged as a `file.upload` event.
   *
   * @example
   * await http.uploadFile(id, "assets/photo.jpg", await openAsBlob("photo.jpg"));
   */
  uploadFile(id: string, path: string, body: Blob | Uint8Array, options: AbortOptions = {}): Promise<FileUploaded> {
    return requestJson(this.endpoint, "PUT", filePath(id, path), options.signal, rawBody(body));
  }

  /** A file of the session's working directory, as a Blob (a browser keeps a large one out of its heap). */
  downloadFile(id: string, path: string, options: AbortOptions = {}): Promise<Blob> {
    return request(this.endpoint, "GET", filePath(id, path), options.signal, undefined, (res) => res.blob());
  }

  events(id: string, query: EventsQuery & AbortOptions = {}): Promise<EventsPage> {
    const params = new URLSearchParams();
    if (query.since !== undefined) params.set("since", String(query.since));
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    if (query.types && query.types.length > 0) params.set("types", query.types.join(","));
    const qs = params.toString();
    return this.json("GET", `${sessionPath(id)}/events${qs ? `?${qs}` : ""}`, query.signal);
  }

  /**
   * Where an agent session's turns start (docs/protocol.md, "Turns"): the last `limit` ones and
   * the prompts in the queue, or those `before` / `from` a seq, to read a page of events from.
   *
   * @example
   * const { turns } = await http.turns(id, { limit: 2 }); // the last two turns
   * const older = await http.turns(id, { before: turns[0]!.start, limit: 3 });
   */
  turns(id: string, query: TurnsQuery & AbortOptions = {}): Promise<TurnsPage> {
    const params = new URLSearchParams();
    if (query.before !== undefined) params.set("before", String(query.before));
    if (query.from !== undefined) params.set("from", String(query.from));
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    const qs = params.toString();
    return this.json("GET", `${sessionPath(id)}/turns${qs ? `?${qs}` : ""}`, query.signal);
  }

  /**
   * Every retained event after `since`, page by page, up to the head at the time of each read.
   * Aborting `signal` ends the iteration: the next page's read (or the one under way) rejects
   * with its reason.
   */
  async *allEvents(
    id: string,
    query: Omit<EventsQuery, "limit"> & AbortOptions = {},
  ): AsyncGenerator<SessionEvent, void, undefined> {
    let since = query.since ?? 0;
    for (;;) {
      const page = await this.events(id, { ...query, since });
      yield* page.events;
      if (page.next <= since || page.next >= page.head) return;
      since = page.next;
    }
  }

  /**
   * Raw output bytes from byte offset `since` (what `switchboard logs` prints): at most `max`
   * (the gateway's page, about 8 MiB, when not given).
   */
  output(id: string, query: { since?: number; max?: number } & AbortOptions = {}): Promise<OutputChunk> {
    const params = new URLSearchParams();
    if (query.since !== undefined) params.set("since", String(query.since));
    if (query.max !== undefined) params.set("max", String(query.max));
    const qs = params.toString();
    return request(
      this.endpoint,
      "GET",
      `${sessionPath(id)}/output${qs ? `?${qs}` : ""}`,
      query.signal,
      undefined,
      async (res) => {
        const bytes = new Uint8Array(await res.arrayBuffer());
        const next = Number(res.headers.get("X-Switchboard-Next-Offset") ?? (query.since ?? 0) + bytes.length);
        const total = Number(res.headers.get("X-Switchboard-Output-Bytes") ?? next);
        return { bytes, next, total };
      },
    );
  }

  /**
   * The screen of a PTY session now (docs/protocol.md, "The screen"): text (or ANSI) at the PTY's
   * size or `cols`×`rows`, the cursor, whether a full-screen program shows, and the output
   * `offset` it reflects.
   */
  screen(
    id: string,
    query: { format?: "text" | "ansi"; cols?: number; rows?: number } & AbortOptions = {},
  ): Promise<ScreenAnswer> {
    const params = new URLSearchParams();
    if (query.format !== undefined) params.set("format", query.format);
    if (query.cols !== undefined) params.set("cols", String(query.cols));
    if (query.rows !== undefined) params.set("rows", String(query.rows));
    const qs = params.toString();
    return this.json("GET", `${sessionPath(id)}/screen${qs ? `?${qs}` : ""}`, query.signal);
  }

  /**
   * What agents changed in files (docs/protocol.md, "Changes"): per file, with its unified diff,
   * for run `run` (`"latest"`: the session's last run), or across all the session's runs.
   *
   * @example
   * const { files } = await http.changes(id, { run: "latest" });
   */
  changes(id: string, query: { run?: string } & AbortOptions = {}): Promise<ChangesAnswer> {
    const where = query.run !== undefined ? `/runs/${encodeURIComponent(query.run)}/changes` : "/changes";
    return this.json("GET", `${sessionPath(id)}${where}`, query.signal);
  }

  /**
   * The git patch of run `run` (`"latest"`: the session's last run): `git apply` in the session's
   * cwd makes its text changes (binary ones are named in `# ` lines).
   *
   * @example
   * writeFileSync("run.patch", await http.patch(id, "latest"));
   */
  patch(id: string, run: string, options: AbortOptions = {}): Promise<string> {
    const path = `${sessionPath(id)}/runs/${encodeURIComponent(run)}/patch`;
    return request(this.endpoint, "GET", path, options.signal, undefined, (res) => res.text());
  }

  /**
   * An asciicast v2 recording of a PTY session, up to its output now (docs/protocol.md,
   * "Recordings and transcripts"): `asciinema play` plays it. A Blob, so that a browser keeps a
   * long one out of its heap.
   *
   * @example
   * writeFileSync("session.cast", await (await http.cast(id)).text());
   */
  cast(id: string, options: AbortOptions = {}): Promise<Blob> {
    return request(this.endpoint, "GET", `${sessionPath(id)}/cast`, options.signal, undefined, (res) => res.blob());
  }

  /** All of a session's retained output: the raw bytes, or (`format: "text"`) the text without escape sequences. */
  transcript(id: string, query: { format?: "raw" | "text" } & AbortOptions = {}): Promise<Blob> {
    const qs = query.format !== undefined ? `?format=${query.format}` : "";
    return request(this.endpoint, "GET", `${sessionPath(id)}/transcript${qs}`, query.signal, undefined, (res) =>
      res.blob(),
    );
  }

  /** Appends producer events (at most `limits.eventsPerAppend` per call, 1000 by default). */
  appendEvents(
    id: string,
    events: AppendEventInput | readonly AppendEventInput[],
    options: AbortOptions = {},
  ): Promise<AppendedEvents> {
    return this.json("POST", `${sessionPath(id)}/events`, options.signal, events);
  }

  /**
   * Types into the session (control rules apply). Bytes that are not text are sent as base64.
   * `eof` ends the input after `data` (which may then be empty): a pipe's stdin is closed, a PTY gets ^D.
   * More than `LIMITS.INPUT_BYTES` (64 KiB) rejects with PAYLOAD_TOO_LARGE without being sent.
   */
  input(
    id: string,
    data: string | Uint8Array,
    options: { eof?: boolean } & AbortOptions = {},
  ): Promise<{ ok: true; bytes: number; eof?: true }> {
    const refused = inputError(data);
    // An aborted signal still wins (the call rejects with its reason): checked where it is sent.
    if (refused && options.signal?.aborted !== true) return Promise.reject(refused);
    const body = typeof data === "string" ? { data } : { data: encodeBase64(data), enc: "base64" };
    return this.json(
      "POST",
      `${sessionPath(id)}/input`,
      options.signal,
      options.eof === true ? { ...body, eof: true } : body,
    );
  }

  signal(
    id: string,
    signal: SignalName | string,
    options: AbortOptions = {},
  ): Promise<{ ok: true; signal: SignalName }> {
    return this.json("POST", `${sessionPath(id)}/signal`, options.signal, { signal });
  }

  resize(
    id: string,
    size: { cols: number; rows: number },
    options: AbortOptions = {},
  ): Promise<{ ok: true; cols: number; rows: number }> {
    return this.json("POST", `${sessionPath(id)}/resize`, options.signal, { cols: size.cols, rows: size.rows });
  }

  /** Takes or gives back the control lease for this token's HTTP calls. */
  control(
    id: string,
    action: "acquire" | "release",
    options: { force?: boolean } & AbortOptions = {},
  ): Promise<{ ok: true; controller: string | null }> {
    return this.json("POST", `${sessionPath(id)}/control`, options.signal, {
      action,
      ...(options.force !== undefined ? { force: options.force } : {}),
    });
  }

  /** Queues a prompt: `text`, or `{text?, content?}` with ACP content blocks (images, files, links). */
  prompt(id: string, prompt: string | PromptRequest, options: AbortOptions = {}): Promise<{ runId: string }> {
    const body = typeof prompt === "string" ? { text: prompt } : prompt;
    return this.json("POST", `${sessionPath(id)}/prompt`, options.signal, body);
  }

  /** Aborts the active run (`all`: and every queued one). Rejects with RUN_NOT_ACTIVE when there is none. */
  abort(id: string, options: { all?: boolean } & AbortOptions = {}): Promise<AbortResult> {
    return this.json(
      "POST",
      `${sessionPath(id)}/abort`,
      options.signal,
      options.all !== undefined ? { all: options.all } : {},
    );
  }

  /**
   * Runs a lost agent session again (its agent reloads its conversation, ACP `session/load`);
   * the session, running. Rejects with AGENT_CANNOT_RESUME, whose message says why, when it cannot.
   */
  resume(id: string, options: AbortOptions = {}): Promise<SessionInfo> {
    return this.json("POST", `${sessionPath(id)}/resume`, options.signal, {});
  }

  /** Answers an agent's permission request; the first valid answer wins. */
  permission(id: string, requestId: string, optionId: string, options: AbortOptions = {}): Promise<{ ok: true }> {
    return this.json("POST", `${sessionPath(id)}/permission`, options.signal, { requestId, optionId });
  }

  /** Ends the session's `attention`: someone with control looked at it (the UI sends it while the session is shown). */
  seen(id: string, options: AbortOptions = {}): Promise<{ ok: true }> {
    return this.json("POST", `${sessionPath(id)}/seen`, options.signal, {});
  }

  /** The permission policy that answers an agent session's requests, and whose it is. */
  permissionPolicy(id: string, options: AbortOptions = {}): Promise<PolicyInForce> {
    return this.json("GET", `${sessionPath(id)}/permission-policy`, options.signal);
  }

  /** Sets the session's own permission policy (null: back to its agent's); rejects VALIDATION_FAILED naming a bad rule. */
  setPermissionPolicy(
    id: string,
    policy: PermissionPolicyInput | null,
    options: AbortOptions = {},
  ): Promise<PolicyInForce> {
    return this.json("PUT", `${sessionPath(id)}/permission-policy`, options.signal, policy);
  }

  /** What `policy` would have answered to each of the session's past permission requests. */
  previewPermissionPolicy(
    id: string,
    policy: PermissionPolicyInput,
    options: AbortOptions = {},
  ): Promise<{ requests: PolicyPreviewRow[] }> {
    return this.json("POST", `${sessionPath(id)}/permission-policy/preview`, options.signal, { policy });
  }

  /** Answers an agent's elicitation; `content` (with `accept`) must match its form. */
  elicitation(
    id: string,
    requestId: string,
    action: "accept" | "decline" | "cancel",
    content?: Record<string, unknown>,
    options: AbortOptions = {},
  ): Promise<{ ok: true }> {
    return this.json("POST", `${sessionPath(id)}/elicitation`, options.signal, {
      requestId,
      action,
      ...(content !== undefined ? { content } : {}),
    });
  }

  /**
   * Switches the agent to one of its modes (`agentState.modes.availableModes`); resolves with the
   * agent's state once it confirmed. Rejects INVALID_OPTION naming its modes, AGENT_FAILED.
   */
  setMode(
    id: string,
    modeId: string,
    options: AbortOptions = {},
  ): Promise<{ ok: true; agentState: AgentState | null }> {
    return this.json("POST", `${sessionPath(id)}/mode`, options.signal, { modeId });
  }

  /**
   * Sets one of the agent's settings (`agentState.configOptions`, the model among them) to one of
   * its values; resolves with the agent's state once it confirmed. Rejects INVALID_OPTION naming the values.
   */
  setConfig(
    id: string,
    configId: string,
    value: string | boolean,
    options: AbortOptions = {},
  ): Promise<{ ok: true; agentState: AgentState | null }> {
    return this.json("POST", `${sessionPath(id)}/config`, options.signal, { configId, value });
  }

  /**
   * Where `message` would go by the gateway's bindings, without running anything
   * (`POST /v1/route`, docs/routing.md): its agent, the rule that matched and its session key.
   */
  route(message: InboundMessage, options: AbortOptions = {}): Promise<RouteResult> {
    return this.json("POST", "/v1/route", options.signal, message);
  }

  /**
   * Delivers `message` (`POST /v1/messages`): the agent session of its session key (created on
   * first use) gets it as a queued run. Follow `sessionId` to read the answer. Needs an operator
   * or admin token.
   */
  deliver(message: InboundMessage, options: AbortOptions = {}): Promise<Delivery> {
    return this.json("POST", "/v1/messages", options.signal, message);
  }

  /**
   * Admins only (others: FORBIDDEN): what the data directory takes on disk, what ended
   * sessions' logs take, and the `retention.endedSessions` rule in force (null: no limit).
   */
  diskUsage(options: AbortOptions = {}): Promise<DiskUsageAnswer> {
    return this.json("GET", "/v1/admin/disk", options.signal);
  }

  /** Who the token (or cookie) is. Cheap; also a credentials check. */
  /**
   * `POST /v1/shutdown` (admins): the gateway stops as on SIGTERM. `sessions: "end"` ends every
   * session's process too; `keep` (default) leaves held terminal sessions to the next gateway.
   */
  shutdown(
    body: { sessions?: "keep" | "end" } = {},
    options: AbortOptions = {},
  ): Promise<{ stopping: true; sessions: "keep" | "end" }> {
    return this.json("POST", "/v1/shutdown", options.signal, body);
  }

  /**
   * Who the token is: `name` to show, `id` its principal id (`token:NAME`, `device:ID`,
   * `proxy:USER`, `share:ID`); a share link's caller gets `share`, the one session it opens.
   */
  whoami(options: AbortOptions = {}): Promise<{ name: string; role: string; id: string; share?: ShareScope }> {
    return this.json("GET", "/v1/whoami", options.signal);
  }

  /** `GET /healthz` (no credentials needed): resolves when the gateway answers. */
  health(options: AbortOptions = {}): Promise<void> {
    return request(this.endpoint, "GET", "/healthz", options.signal, undefined, async (res) => {
      await res.arrayBuffer();
    });
  }

  private json<T>(method: string, path: string, signal: AbortSignal | undefined, body?: unknown): Promise<T> {
    return requestJson(this.endpoint, method, path, signal, body);
  }
}

function sessionPath(id: string): string {
  return `/v1/sessions/${encodeURIComponent(id)}`;
}

/** `DELETE /v1/sessions/:id`'s worktree options. */
export interface WorktreeRemoval {
  /** Also remove the session's git worktree (its branch stays). */
  removeWorktree?: boolean;
  /** With `removeWorktree`: even when it has uncommitted changes, which are lost. */
  discardChanges?: boolean;
}

function worktreeQuery(options: WorktreeRemoval, lead: "?" | "&"): string {
  if (options.removeWorktree !== true) return "";
  return `${lead}removeWorktree=true${options.discardChanges === true ? "&discardChanges=true" : ""}`;
}

function filePath(id: string, path: string): string {
  return `${sessionPath(id)}/files?path=${encodeURIComponent(path)}`;
}

/**
 * The HTTP client that a WebSocket client uses next to its socket: the same target, with the
 * socket client's `httpTimeoutMs` as the timeout.
 */
export function httpClientFor(options: GatewayTarget & { httpTimeoutMs?: number | undefined }): HttpClient {
  return new HttpClient({
    ...options,
    ...(options.httpTimeoutMs !== undefined ? { timeoutMs: options.httpTimeoutMs } : {}),
  });
}
