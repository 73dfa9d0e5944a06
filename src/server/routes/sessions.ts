import type { AgentChoice } from "../../agents/acp-choices.js";
import { z } from "zod";
import {
  AbortBody,
  ControlBody,
  CreateSession,
  InputBody,
  LIMITS,
  PermissionBody,
  PermissionPolicy,
  PolicyPreviewBody,
  SeenBody,
  ModeBody,
  ConfigBody,
  ElicitationBody,
  PROMPT_BODY_MAX_BYTES,
  PromptBody,
  ResizeBody,
  SignalBody,
  SwitchboardError,
  needsCapabilities,
  promptInput,
} from "../../protocol/index.js";
import { isPublicError, InternalError } from "../../protocol/errors.js";
import type { SessionWorktree } from "../../protocol/index.js";
import { OUTPUT_READ_MAX_BYTES } from "../../log/log-reader.js";
import type { OutputSlice } from "../../log/log-reader.js";
import type { Session } from "../../sessions/session.js";
import { currentCopy, sessionFor } from "../identity/access.js";
import { answerEncoding, compressWhole, compressingStream } from "../http/compressed-answer.js";
import { actorOf, canSee } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import { resolveSession } from "../cluster/session-resolver.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { HTTP_HOLDER_PREFIX, LOG_PENDING_HEADER } from "../http/http-constants.js";
import {
  SECURITY_HEADERS,
  boolParam,
  intParam,
  typesParam,
  readJson,
  readOptionalJson,
  sendJson,
  sendJsonText,
  validate,
  validateQuery,
} from "../http/http.js";
import { EXPORT_READ_BYTES, pacedExport } from "../http/paced-export.js";
import type { ExportSlice, ExportSource } from "../http/paced-export.js";
import type { Router } from "../http/router.js";
import { forwardToOwner, ownerElsewhere } from "../cluster/session-forwarding.js";
import { runFileAction } from "./files.js";
import { runWorktreeAction } from "./worktree.js";
import { ForwardedMessage, deliverMessage } from "./messages.js";
import type { SessionAction, SessionAnswer, SessionCall } from "../cluster/session-forwarding.js";
import { AnswerBudget } from "../http/answer-budget.js";
import { HttpInputBudgets } from "../input-budget.js";
import type { InputBudget } from "../input-budget.js";
import { SessionListQuery, listQueryParams, pageOf } from "../http/session-list.js";
import { ListAnswers } from "../http/list-answers.js";
import { control, inputBytes, steer, steerable } from "../steering.js";
import { resumeAgentSession } from "../agents.js";
import { answerAppended, appendEventsNow } from "../ws/event-appends.js";
import { steerTarget } from "../../sessions/steer-target.js";
import type { AgentGatewaySession } from "../../sessions/agent-gateway-session.js";
import { assertClean, removeWorktree } from "../../sessions/worktree.js";

/** Reads a request's JSON body within the gateway's body limit. */
type BodyReader = (ctx: RequestContext) => Promise<unknown>;

/** The session routes (docs/protocol.md, "HTTP routes"): create, list, read (events, output), steer, append, delete. */
export function sessionRoutes(router: Router, core: GatewayCore): void {
  const body: BodyReader = async (ctx) => readJson(ctx.req, core.limits.bodyBytes);
  // Big answers held in memory until read, per identity (pages of output, events and sessions).
  const answers = new AnswerBudget();
  const list = new SessionList(core, answers);

  router.add("POST", "/v1/sessions", async (ctx) => {
    const spec = validate(CreateSession, await body(ctx));
    const session = await core.createSession(spec, ctx.identity);
    // Cluster mode: answered once Redis lists it, so the client's next request finds it on any node.
    const failure = await core.events.unlessFailing(core.events.shared(session.id));
    sendJson(ctx.res, 201, session.info(), failure ? { [LOG_PENDING_HEADER]: failure.code ?? "write-failed" } : {});
  });
  router.add("GET", "/v1/sessions", (ctx) => list.answer(ctx));
  router.add("GET", "/v1/sessions/:id", (ctx) => {
    sendJson(ctx.res, 200, sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see").info());
  });
  router.add("GET", "/v1/sessions/:id/events", (ctx) => readEvents(core, answers, ctx));
  router.add("GET", "/v1/sessions/:id/output", (ctx) => readOutput(core, answers, ctx));
  changingRoutes(router, core, body);
}

/** `GET /v1/sessions`: the sessions the caller may see, a page at a time. */
class SessionList {
  // Once per gateway: an answer without `limit` that had to stop at a page.
  private warnedUnpaged = false;
  private readonly joined = new ListAnswers();

  constructor(
    private readonly core: GatewayCore,
    private readonly answers: AnswerBudget,
  ) {}

  answer(ctx: RequestContext): void {
    const { core, answers } = this;
    const query = validateQuery(SessionListQuery, listQueryParams(ctx.url));
    const visible = this.candidates(ctx.identity).filter((s) => canSee(ctx.identity, s.record));
    answers.check(ctx.identity.principal);
    // Each entry is kept serialised between the session's changes (sessions/list-summary.ts),
    // and the answer joined while its entries are those (http/list-answers.ts).
    const page = pageOf(visible, query, (s) => s.listEntry());
    if (query.limit === undefined && query.after === undefined && page.next !== undefined && !this.warnedUnpaged) {
      this.warnedUnpaged = true;
      core.logger.warn(
        { listed: page.sessions.length, visible: page.matched },
        "GET /v1/sessions without limit listed one page; a client that does not follow next misses the newest sessions (set retention.endedSessions, or update the client)",
      );
    }
    const next = page.next !== undefined ? `,"next":${JSON.stringify(page.next)}` : "";
    const text = this.joined.answer(page.json!, next);
    answers.admit(ctx.identity.principal, ctx.res, text.length);
    sendJsonText(ctx.res, 200, text);
  }

  /** The sessions `identity` may see among: a share link's one, or every session. */
  private candidates(identity: Identity): Session[] {
    if (identity.share === undefined) return this.core.sessions.list();
    const shared = this.core.sessions.get(identity.share.session);
    return shared === undefined ? [] : [shared];
  }
}

/**
 * `DELETE /v1/sessions/:id`: stops the session, or with `purge` forgets it; with `removeWorktree`
 * then removes its worktree (refused before anything is stopped while it has uncommitted work,
 * unless `discardChanges`).
 */
async function deleteSession(core: GatewayCore, call: SessionCall): Promise<SessionAnswer> {
  const session = sessionFor(core.sessions, call.identity, call.sessionId, "steer");
  const url = new URL(`?${call.query}`, "http://localhost/");
  const worktree = await worktreeToRemove(session, url);
  const answer = await stopOrForget(core, call, session, url);
  if (worktree !== undefined) await removeSessionWorktree(core, session, worktree, boolParam(url, "discardChanges"));
  return answer.status === 200 && worktree !== undefined && !boolParam(url, "purge")
    ? { status: 200, body: session.info() }
    : answer;
}

/** The worktree `removeWorktree=true` asks to remove, checked clean unless `discardChanges`; undefined when not asked. */
async function worktreeToRemove(session: Session, url: URL): Promise<SessionWorktree | undefined> {
  if (!boolParam(url, "removeWorktree")) {
    if (boolParam(url, "discardChanges")) {
      throw new SwitchboardError("BAD_REQUEST", "discardChanges goes with removeWorktree=true");
    }
    return undefined;
  }
  const worktree = session.record.worktree;
  if (worktree === undefined || worktree.removedAt !== undefined) {
    throw new SwitchboardError("BAD_REQUEST", `session ${session.id} has no worktree to remove`);
  }
  if (!boolParam(url, "discardChanges")) await assertClean(worktree);
  return worktree;
}

/** Removes the stopped (or forgotten) session's worktree; a failure says the session is stopped all the same. */
async function removeSessionWorktree(
  core: GatewayCore,
  session: Session,
  worktree: SessionWorktree,
  discardChanges: boolean,
): Promise<void> {
  try {
    await removeWorktree(worktree, { discardChanges });
  } catch (error) {
    if (!isPublicError(error)) throw error;
    throw new SwitchboardError(
      error.code,
      `session ${session.id} is stopped, but its worktree was not removed: ${error.message}`,
      error.details === undefined ? undefined : { ...error.details },
    );
  }
  session.worktreeRemoved(core.clock.now());
}

async function stopOrForget(core: GatewayCore, call: SessionCall, session: Session, url: URL): Promise<SessionAnswer> {
  if (!boolParam(url, "purge")) {
    // The answer says how it ended, once that is in the log (also when the process had ended
    // already and its exit was still on its way to the disk: it said "running").
    const stopping = session.terminate(actorOf(call.identity)).then(() => session.ended());
    const failure = await core.events.unlessFailing(stopping);
    if (failure !== undefined) {
      stopping.catch(() => undefined);
      throw new SwitchboardError(
        "LOG_UNAVAILABLE",
        `the session is stopped or stopping, but the event log cannot record how it ended yet (${failure.message}); it does once the data directory can be written again, and GET /v1/sessions/${session.id} then says it`,
      );
    }
    await stopping;
    return { status: 200, body: session.info() };
  }
  // Forgets it: record, log and child sessions (terminated first with force=true).
  const removed = await core.sessions.remove(session.id, actorOf(call.identity), {
    force: boolParam(url, "force"),
  });
  // A concurrent remove took it while this one waited for the process to end.
  if (removed.length === 0) throw new SwitchboardError("SESSION_NOT_FOUND", `no session ${session.id}`);
  core.metrics.sessionsRemoved.inc({ reason: "purge" }, removed.length);
  return { status: 200, body: { removed: removed.map((s) => s.info()) } };
}

/**
 * `GET /v1/sessions/:id/events`: a page of the session's events. A page longer than one read of
 * EXPORT_READ_BYTES is streamed a read per step of the catch-up scheduler, charged to the
 * caller's token as exports are, and counted whole (EVENTS_PAGE_BYTES) against its answers.
 */
async function readEvents(core: GatewayCore, answers: AnswerBudget, ctx: RequestContext): Promise<void> {
  const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
  await resolveSession(core.sessions, session).reach(intParam(ctx.url, "since", 0));
  // 0 (or none) is "from the start of what is retained", wherever retention has moved it.
  const since = intParam(ctx.url, "since", 0) || session.log.first - 1;
  const limit = intParam(ctx.url, "limit", LIMITS.EVENTS_PAGE_DEFAULT, LIMITS.EVENTS_PAGE_MAX, 1);
  const types = typesParam(ctx.url);
  answers.check(ctx.identity.principal);
  const page = new EventsPage(session, since, limit, types);
  // Events are stored serialized: the page is assembled without parsing them.
  const start = page.next()!.chunk as string;
  const compress = core.config.compression.http === true;
  if (!page.streams) {
    const text = start + (page.next()!.chunk as string);
    answers.admit(ctx.identity.principal, ctx.res, text.length);
    const encoding = answerEncoding(ctx.req, text.length, compress);
    if (encoding === undefined) {
      sendJsonText(ctx.res, 200, text);
      return;
    }
    const body = compressWhole(text, encoding);
    ctx.res.writeHead(200, {
      ...SECURITY_HEADERS,
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
      "Content-Encoding": encoding,
      "Content-Length": body.length,
      Vary: "Accept-Encoding",
    });
    ctx.res.end(body);
    return;
  }
  answers.admit(ctx.identity.principal, ctx.res, LIMITS.EVENTS_PAGE_BYTES);
  const encoding = answerEncoding(ctx.req, LIMITS.EVENTS_PAGE_BYTES, compress);
  ctx.res.writeHead(200, {
    ...SECURITY_HEADERS,
    "Content-Type": "application/json; charset=utf-8",
    "Cache-Control": "no-store",
    Vary: "Accept-Encoding",
    ...(encoding !== undefined ? { "Content-Encoding": encoding } : {}),
  });
  if (ctx.req.method === "HEAD") {
    ctx.res.end();
    return;
  }
  const out = encoding !== undefined ? compressingStream(ctx.res, encoding) : ctx.res;
  out.write(start);
  const { share, release } = core.catchUp.hold(ctx.identity.principal);
  try {
    await pacedExport(out, page, { scheduler: core.catchUp.scheduler, share });
    out.end();
  } catch (error) {
    // The status is sent: the client sees JSON cut short, the log says why.
    core.logger.error({ err: error, path: ctx.url.pathname }, "an events page failed; the response was cut");
    ctx.res.destroy();
  } finally {
    release();
  }
}

/**
 * A page of events from `since`: up to `limit` events and about EVENTS_PAGE_BYTES, read
 * EXPORT_READ_BYTES at a time; the page ends where a read ends short of its bytes (the head, or
 * a type filter's scan bound). Its last slice is the JSON's tail: `head`, `first` and `next`.
 */
class EventsPage implements ExportSource {
  private since: number;
  private left: number;
  private bytes = 0;
  /** Events written so far (a comma goes before the next read's). */
  private written = 0;
  private first = 0;
  private head = 0;
  private more = true;
  private opened = false;
  private ended = false;

  constructor(
    private readonly session: Session,
    since: number,
    limit: number,
    private readonly types: ReadonlySet<string> | undefined,
  ) {
    this.since = since;
    this.left = limit;
  }

  /** Whether the page takes more than its first read (known after the first `next`). */
  get streams(): boolean {
    return this.more;
  }

  next(): ExportSlice | null {
    if (this.ended) return null;
    if (!this.more) {
      this.ended = true;
      return { chunk: `],"head":${this.head},"first":${this.first},"next":${this.since}}`, readBytes: 0 };
    }
    const page = this.session.log.read(this.since, {
      limit: this.left,
      maxBytes: EXPORT_READ_BYTES,
      ...(this.types ? { types: this.types } : {}),
    });
    const opening = !this.opened;
    this.opened = true;
    if (opening) this.first = page.first;
    this.head = page.head;
    const read = page.entries.reduce((n, e) => n + e.size, 0);
    const json = page.entries.map((e) => e.json).join(",");
    const chunk = (opening ? `{"events":[` : "") + (this.written > 0 && json !== "" ? "," : "") + json;
    this.written += page.entries.length;
    this.left -= page.entries.length;
    this.bytes += read;
    this.more =
      read >= EXPORT_READ_BYTES && this.left > 0 && this.bytes < LIMITS.EVENTS_PAGE_BYTES && page.next > this.since;
    this.since = page.next;
    return { chunk, readBytes: read };
  }
}

/**
 * `GET /v1/sessions/:id/output`: the session's output bytes from `since`, at most `max`, up to
 * the output's end at the time of the request. Written one read of EXPORT_READ_BYTES per step of
 * the catch-up scheduler and charged to the caller's token, as exports are (src/server/http/paced-export.ts).
 */
async function readOutput(core: GatewayCore, answers: AnswerBudget, ctx: RequestContext): Promise<void> {
  const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
  await currentCopy(core.sessions, session);
  let since = intParam(ctx.url, "since", 0);
  // A reader that wants a page (an MCP tool, a phone) need not take the whole 8 MiB.
  const max = intParam(ctx.url, "max", OUTPUT_READ_MAX_BYTES, OUTPUT_READ_MAX_BYTES, 1);
  answers.check(ctx.identity.principal);
  let first: OutputSlice[];
  try {
    first = session.log.readOutput(since, Math.min(max, EXPORT_READ_BYTES));
  } catch (error) {
    // 0 (or none) is "from the start of what is retained": the first byte retention kept.
    const kept = isPublicError(error) ? error.details?.["first"] : undefined;
    if (since !== 0 || (error as SwitchboardError).code !== "HISTORY_TRIMMED" || typeof kept !== "number") throw error;
    since = kept;
    first = session.log.readOutput(since, Math.min(max, EXPORT_READ_BYTES));
  }
  // Published output is contiguous: every byte up to outputBytes can be read.
  const end = since + Math.max(0, Math.min(max, session.log.outputBytes - since));
  answers.admit(ctx.identity.principal, ctx.res, end - since);
  const encoding = answerEncoding(ctx.req, end - since, core.config.compression.http === true);
  ctx.res.writeHead(200, {
    ...SECURITY_HEADERS,
    "Content-Type": "application/octet-stream",
    // Compressed, the length is known once written: the body is chunked.
    ...(encoding !== undefined ? { "Content-Encoding": encoding } : { "Content-Length": end - since }),
    Vary: "Accept-Encoding",
    "Cache-Control": "no-store",
    // Where these bytes start: `since`, or the first byte retention kept when `since` was 0.
    "X-Switchboard-Output-Start": String(since),
    "X-Switchboard-Next-Offset": String(end),
    "X-Switchboard-Output-Bytes": String(session.log.outputBytes),
  });
  if (ctx.req.method === "HEAD") {
    ctx.res.end();
    return;
  }
  const out = encoding !== undefined ? compressingStream(ctx.res, encoding) : ctx.res;
  const { share, release } = core.catchUp.hold(ctx.identity.principal);
  try {
    await pacedExport(out, new OutputPage(session, since, end, first), {
      scheduler: core.catchUp.scheduler,
      share,
    });
    out.end();
  } catch (error) {
    // The status is sent: the client sees a body shorter than its Content-Length, the log says why.
    core.logger.error({ err: error, path: ctx.url.pathname }, "an output page failed; the response was cut");
    ctx.res.destroy();
  } finally {
    release();
  }
}

/** Output bytes `[from, end)`, one read of the log per slice; `first` is the read that started at `from`. */
class OutputPage implements ExportSource {
  private offset: number;
  private pending: OutputSlice[] | undefined;

  constructor(
    private readonly session: Session,
    from: number,
    private readonly end: number,
    first: OutputSlice[],
  ) {
    this.offset = from;
    this.pending = first;
  }

  next(): ExportSlice | null {
    if (this.offset >= this.end) return null;
    const slices =
      this.pending ?? this.session.log.readOutput(this.offset, Math.min(EXPORT_READ_BYTES, this.end - this.offset));
    this.pending = undefined;
    let bytes = Buffer.concat(slices.map((s) => s.bytes));
    if (bytes.length === 0) throw new InternalError(`output ends at ${this.offset}, short of ${this.end}`);
    if (bytes.length > this.end - this.offset) bytes = bytes.subarray(0, this.end - this.offset);
    this.offset += bytes.length;
    return { chunk: bytes, readBytes: bytes.length };
  }
}

/**
 * The routes that change a session: input, signal, resize, control, prompt, abort, permission, mode and config
 * (each checks control first), resuming a lost agent session, appending events and `DELETE`. In cluster mode each is run by the
 * session's owner: a node forwards it there after reading its body (docs/cluster.md, "Requests to the owner").
 */
function changingRoutes(router: Router, core: GatewayCore, body: BodyReader): void {
  const optional: BodyReader = async (ctx) => readOptionalJson(ctx.req, core.limits.bodyBytes);
  // A prompt may carry images and files (prompt-content.ts): its own bound, when larger.
  const prompt: BodyReader = async (ctx) =>
    core.limits.bodyBytes >= PROMPT_BODY_MAX_BYTES
      ? readJson(ctx.req, core.limits.bodyBytes)
      : readJson(ctx.req, PROMPT_BODY_MAX_BYTES, "PROMPT_BODY_MAX_BYTES");
  const none: BodyReader = async () => undefined;
  const routes: Array<[method: string, path: string, SessionAction, BodyReader]> = [
    ["POST", "/v1/sessions/:id/input", "input", body],
    ["POST", "/v1/sessions/:id/signal", "signal", body],
    ["POST", "/v1/sessions/:id/resize", "resize", body],
    ["POST", "/v1/sessions/:id/control", "control", body],
    ["POST", "/v1/sessions/:id/prompt", "prompt", prompt],
    ["POST", "/v1/sessions/:id/abort", "abort", optional],
    ["POST", "/v1/sessions/:id/permission", "permission", body],
    ["POST", "/v1/sessions/:id/mode", "mode", body],
    ["POST", "/v1/sessions/:id/config", "config", body],
    ["POST", "/v1/sessions/:id/elicitation", "elicitation", body],
    ["POST", "/v1/sessions/:id/resume", "resume", optional],
    ["POST", "/v1/sessions/:id/events", "events", body],
    ["DELETE", "/v1/sessions/:id", "delete", none],
    ["POST", "/v1/sessions/:id/seen", "seen", optional],
    ["GET", "/v1/sessions/:id/permission-policy", "policy-get", none],
    ["PUT", "/v1/sessions/:id/permission-policy", "policy-put", body],
    ["POST", "/v1/sessions/:id/permission-policy/preview", "policy-preview", body],
  ];
  const inputBudgets = new HttpInputBudgets(core.limits, core.clock);
  for (const [method, path, action, read] of routes) {
    router.add(method, path, async (ctx) => {
      const sessionId = ctx.params["id"]!;
      // As on one node: who may append is checked before the body is read.
      if (action === "events") sessionFor(core.sessions, ctx.identity, sessionId, "steer");
      const call: SessionCall = {
        action,
        sessionId,
        identity: ctx.identity,
        holderKey: ctx.holderKey,
        body: await read(ctx),
        query: ctx.url.search.slice(1),
      };
      // Input is charged to the token before it runs here or at the owner; what was refused is given back.
      const budget = action === "input" ? inputBudgets.of(ctx.identity.principal) : undefined;
      const charged = budget !== undefined ? chargeInput(budget, call.body) : 0;
      try {
        const owner = ownerElsewhere(core, sessionId, ctx.identity);
        if (owner === undefined) {
          const answer = await runSessionAction(core, call);
          if (answer.status >= 400) budget?.giveBack(charged);
          sendJson(ctx.res, answer.status, answer.body);
          return;
        }
        const answer = await forwardToOwner(core, owner, call);
        if (answer.status >= 400) budget?.giveBack(charged);
        const pending = answer.pending !== undefined ? { [LOG_PENDING_HEADER]: answer.pending } : undefined;
        sendJson(ctx.res, answer.status, answer.body, pending);
      } catch (error) {
        budget?.giveBack(charged);
        throw error;
      }
    });
  }
}

/** Charges an input body to `budget` (RATE_LIMITED when spent); returns the bytes charged. */
function chargeInput(budget: InputBudget, body: unknown): number {
  const { data, enc } = validate(InputBody, body);
  const bytes = inputBytes(data, enc).length;
  budget.take(bytes);
  return bytes;
}

/** A forwarded `disconnect`: `now` when the connection closed normally or was revoked (no grace). */
const DisconnectBody = z.strictObject({ now: z.boolean().optional() });

/** Runs a changing route's action on this node: a client's, or one another node forwarded here. */
export async function runSessionAction(core: GatewayCore, call: SessionCall): Promise<SessionAnswer> {
  const { identity, holderKey, sessionId, body } = call;
  const by = actorOf(identity, call.connId);
  switch (call.action) {
    case "input": {
      const { data, enc, eof } = validate(InputBody, body);
      const bytes = inputBytes(data, enc);
      steer(core.sessions, identity, holderKey, sessionId, { op: "input", data: bytes, eof: eof === true }, by);
      return { status: 200, body: { ok: true, bytes: bytes.length, ...(eof ? { eof } : {}) } };
    }
    case "signal": {
      const { signal } = validate(SignalBody, body);
      steer(core.sessions, identity, holderKey, sessionId, { op: "signal", signal }, by);
      return { status: 200, body: { ok: true, signal } };
    }
    case "resize": {
      const { cols, rows } = validate(ResizeBody, body);
      steer(core.sessions, identity, holderKey, sessionId, { op: "resize", cols, rows }, by);
      return { status: 200, body: { ok: true, cols, rows } };
    }
    case "control": {
      const { action, force } = validate(ControlBody, body);
      // A call forwarded from another node's WebSocket holds it as that connection says.
      const via = call.lease?.via ?? (holderKey.startsWith(HTTP_HOLDER_PREFIX) ? "http" : undefined);
      const holder = via !== undefined ? { ...by, via } : by;
      const reclaimKey = call.lease?.reclaimKey;
      const session = control(
        core.sessions,
        identity,
        holderKey,
        sessionId,
        action,
        force ?? false,
        holder,
        reclaimKey,
      );
      return { status: 200, body: { ok: true, controller: session.lease.holder?.actor.name ?? null } };
    }
    case "prompt": {
      const input = promptInput(validate(PromptBody, body));
      let session = steerable(core.sessions, identity, holderKey, sessionId, "prompt");
      if (input.content !== undefined && needsCapabilities(input.content)) {
        // An image the agent cannot take is refused here, before it queues: this may start the agent.
        await session.checkContent(input.content);
        // The lease may have changed while the agent started.
        session = steerable(core.sessions, identity, holderKey, sessionId, "prompt");
      }
      return { status: 202, body: session.prompt(input, by) };
    }
    case "abort": {
      const { all } = validate(AbortBody, body);
      const session = steerable(core.sessions, identity, holderKey, sessionId, "abort");
      return { status: 200, body: session.abort(all ?? false, by) };
    }
    case "permission": {
      const { requestId, optionId } = validate(PermissionBody, body);
      // Approving a tool call steers the agent as much as a prompt does.
      const session = steerable(core.sessions, identity, holderKey, sessionId, "permission");
      session.answerPermission(requestId, optionId, by);
      return { status: 200, body: { ok: true } };
    }
    case "mode":
    case "config": {
      const choice: AgentChoice =
        call.action === "mode"
          ? { kind: "mode", ...validate(ModeBody, body) }
          : { kind: "config", ...validate(ConfigBody, body) };
      // Choosing the agent's mode or model steers it as much as a prompt does.
      const session = steerable(core.sessions, identity, holderKey, sessionId, "choose");
      const agentState = await session.choose(
        choice,
        () => steerable(core.sessions, identity, holderKey, sessionId, "choose"),
        by,
      );
      return { status: 200, body: { ok: true, agentState: agentState ?? null } };
    }
    case "elicitation": {
      const { requestId, action, content } = validate(ElicitationBody, body);
      // Answering the agent's question steers it as much as approving a tool call does.
      const session = steerable(core.sessions, identity, holderKey, sessionId, "elicitation");
      session.answerElicitation(requestId, { action, content }, by);
      return { status: 200, body: { ok: true } };
    }
    case "renew":
      // As a `ping` renews a lease on one node: only the holder's, and nobody is told otherwise.
      sessionFor(core.sessions, identity, sessionId, "control").lease.touch(holderKey);
      return { status: 200, body: { ok: true } };
    case "disconnect": {
      // As a local connection's close: its lease ends if it still holds it (unless `now`, after
      // the grace period when it was taken with a reclaimKey); nothing to refuse.
      const { now } = validate(DisconnectBody, body ?? {});
      sessionFor(core.sessions, identity, sessionId, "control").lease.disconnect(holderKey, now === true);
      return { status: 200, body: { ok: true } };
    }
    case "seen": {
      validate(SeenBody, body ?? {});
      // Looking clears it for whoever may steer now: the control lease's holder, or anyone while it is free.
      const session = steerable(core.sessions, identity, holderKey, sessionId, "seen");
      session.seen(by);
      return { status: 200, body: { ok: true } };
    }
    case "policy-get": {
      const session = sessionFor(core.sessions, identity, sessionId, "see");
      const { policy, source } = policyTarget(session).permissionPolicy();
      return { status: 200, body: { policy: policy ?? null, source } };
    }
    case "policy-put": {
      const policy = body === null ? null : validate(PermissionPolicy, body);
      // Rules answer tool calls for the agent: setting them steers it as much as answering does.
      const session = steerable(core.sessions, identity, holderKey, sessionId, "policy");
      session.setPermissionPolicy(policy, by);
      const now = session.permissionPolicy();
      return { status: 200, body: { policy: now.policy ?? null, source: now.source } };
    }
    case "policy-preview": {
      const { policy } = validate(PolicyPreviewBody, body);
      const session = sessionFor(core.sessions, identity, sessionId, "see");
      return { status: 200, body: { requests: policyTarget(session).previewPolicy(policy) } };
    }
    case "resume":
      return resumeAgentSession(core, call);
    case "events":
      return appendEvents(core, call);
    case "delete":
      return deleteSession(core, call);
    case "worktree":
    case "worktree-diff":
      return runWorktreeAction(core, call);
    case "file-open":
    case "file-chunk":
    case "file-end":
    case "file-abort":
      return runFileAction(core, call);
    case "message": {
      const forwarded = validate(ForwardedMessage, body);
      return { status: 202, body: await deliverMessage(core, forwarded.message, forwarded.by, { forwarded: true }) };
    }
  }
}

/** `session` as an agent session, whose permission policy the policy routes read (WRONG_SESSION_KIND otherwise). */
function policyTarget(session: Session): AgentGatewaySession {
  return steerTarget(session, "policy");
}

/** `POST /v1/sessions/:id/events`: a producer appends events (a stream session's output and exit too). */
function appendEvents(core: GatewayCore, call: SessionCall): Promise<SessionAnswer> {
  const appended = appendEventsNow(core, call);
  return new Promise((resolve, reject) =>
    answerAppended(appended, (error, answer) => (error === undefined ? resolve(answer!) : reject(error))),
  );
}
