/**
 * Every error the gateway can return, with its HTTP status. An error crosses the wire as
 * `{error: {code, message}}` over HTTP and as `{op: "error", code, message}` over WebSocket.
 * `docs/protocol.md` documents each code; a test fails when the two drift apart.
 */
export const ERROR_CODES = {
  BAD_REQUEST: {
    status: 400,
    summary:
      "The request is malformed: a query parameter (or header) out of range or not one of its values, on every route; the message names it.",
  },
  INVALID_JSON: { status: 400, summary: "The body or frame is not valid JSON." },
  VALIDATION_FAILED: {
    status: 400,
    summary:
      "The body or frame does not match the schema; the message names the field (query parameters answer `BAD_REQUEST`).",
  },
  UNKNOWN_OP: { status: 400, summary: "A WebSocket frame has an `op` (or `type`) the server does not know." },
  UNAUTHORIZED: { status: 401, summary: "No credentials, or the token is not valid." },
  FORBIDDEN: { status: 403, summary: "The caller may see this session but not do this to it." },
  ORIGIN_NOT_ALLOWED: { status: 403, summary: "A browser request came from an Origin that is not allowed." },
  HOST_NOT_ALLOWED: {
    status: 421,
    summary: "The Host header is not one of the allowed hosts (DNS rebinding protection).",
  },
  NOT_FOUND: { status: 404, summary: "No such route." },
  PAIRING_CODE_INVALID: {
    status: 401,
    summary:
      "The pairing code is unknown, already used or expired: make a new one (`switchboard pair`, or Pair a device in the UI).",
  },
  PUSH_ACTION_INVALID: {
    status: 401,
    summary:
      "The notification's action token is unknown, already used or expired (the request was answered, or the gateway restarted): open the session to answer.",
  },
  DEVICE_NOT_FOUND: { status: 404, summary: "No paired device with that id (`switchboard devices` lists them)." },
  DEVICE_NAME_TAKEN: {
    status: 409,
    summary: "A paired device already has that name: choose another, or revoke that one first.",
  },
  SHARE_NOT_FOUND: {
    status: 404,
    summary: "No live share link with that id on this session (`GET /v1/sessions/:id/shares` lists them).",
  },
  SESSION_NOT_FOUND: { status: 404, summary: "No such session, or the caller may not see it." },
  SESSION_NAME_AMBIGUOUS: {
    status: 409,
    summary:
      "The CLI was given a session name that several sessions have, or an id prefix several ids start with; the message lists them: give the id of one (`switchboard ls REF` lists them).",
  },
  METHOD_NOT_ALLOWED: { status: 405, summary: "The route exists but not with this method." },
  SESSION_NOT_RUNNING: { status: 409, summary: "The session has ended; it cannot be steered." },
  INPUT_CLOSED: {
    status: 409,
    summary: "The session's input was ended (eof), or its process closed its stdin; it takes no more input.",
  },
  SESSION_RUNNING: {
    status: 409,
    summary: "The session still runs: terminate it first, or remove it with `force=true`.",
  },
  WRONG_SESSION_KIND: {
    status: 409,
    summary: "The operation does not apply to this kind of session (e.g. resize of a pipe session).",
  },
  CONTROL_HELD: { status: 409, summary: "Another client holds the control lease of this session." },
  CONTROL_LOST: { status: 409, summary: "The control lease was taken over by someone else or expired." },
  HISTORY_TRIMMED: {
    status: 410,
    summary:
      "The requested position is older than what retention kept; start from the `head` or the first retained position.",
  },
  PAYLOAD_TOO_LARGE: { status: 413, summary: "The body, frame or field is larger than the configured limit." },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: "The body must be `application/json`." },
  UNSUPPORTED_CONTENT: {
    status: 422,
    summary:
      "The prompt has a block (image, audio, embedded resource) the agent does not take (its ACP `promptCapabilities`); the message says what it takes. Nothing was sent to the agent.",
  },
  SPAWN_FAILED: {
    status: 422,
    summary: "The command could not be started; the message says why (not found, cwd missing, permission).",
  },
  RATE_LIMITED: { status: 429, summary: "Too many requests or too much input; slow down and retry." },
  LIMIT_EXCEEDED: { status: 429, summary: "A configured limit (sessions, connections, subscriptions) is reached." },
  NOT_SUBSCRIBED: { status: 409, summary: "The connection has no subscription to that session." },
  AGENT_NOT_FOUND: { status: 404, summary: "No agent with that id is configured." },
  AGENT_EXITED: { status: 502, summary: "The agent process exited during a run." },
  AGENT_FAILED: {
    status: 502,
    summary:
      "The agent answered with an error (or did not answer `/mode` or `/config` within `ACP_CHOICE_TIMEOUT_MS`).",
  },
  AGENT_AUTH_REQUIRED: {
    status: 502,
    summary:
      "The agent needs its user to log in (ACP `auth_required`) before it can work; the message says how, from the login methods the agent offers. Log in, then prompt again.",
  },
  AGENT_CANNOT_RESUME: {
    status: 409,
    summary:
      "The lost agent session cannot be resumed; the message says why (the agent does not offer ACP `session/load`, or the session was not lost). Start a new session.",
  },
  RUN_NOT_ACTIVE: { status: 409, summary: "There is no active run to abort." },
  RUN_NOT_FOUND: {
    status: 404,
    summary:
      "The session's retained log has no run with that id (`latest`: it has no run yet); the message names its latest runs.",
  },
  PERMISSION_REQUEST_NOT_FOUND: {
    status: 404,
    summary: "No pending permission request with that id (answered, timed out or never asked).",
  },
  ELICITATION_NOT_FOUND: {
    status: 404,
    summary: "No open elicitation with that id (answered, cancelled, timed out or never asked).",
  },
  ELICITATION_CONTENT_INVALID: {
    status: 400,
    summary:
      "The answer's `content` does not match the elicitation's form: the message names the field and why, as do the error's `field` and `reason`. Nothing was sent to the agent; the elicitation stays open.",
  },
  INVALID_OPTION: {
    status: 400,
    summary:
      "The option id is not one of the permission request's options, or the mode, setting or value is not one the agent offers (`/mode`, `/config`): the message names those it offers.",
  },
  NO_ROUTE: { status: 404, summary: "No binding matched and there is no default agent." },
  CONFIG_INVALID: { status: 400, summary: "The configuration is invalid; the message names the path and field." },
  PLUGIN_NOT_FOUND: { status: 404, summary: "No plugin with that id." },
  PLUGIN_UNAVAILABLE: {
    status: 503,
    summary:
      "The plugin is configured but not running now (starting, restarting after a crash, failed or stopped); the message says which. Retry later; GET /v1/plugins/:id says why.",
  },
  PLUGIN_PERMISSION_DENIED: {
    status: 403,
    summary: "The plugin lacks the permission; the message names the config path that grants it.",
  },
  PLUGIN_TIMEOUT: { status: 504, summary: "A plugin call did not answer in time." },
  PLUGIN_FAILED: {
    status: 502,
    summary: "A plugin answered with something the gateway cannot pass on; the message says what. Fix the plugin.",
  },
  SHUTTING_DOWN: {
    status: 503,
    summary:
      "The gateway is stopping: nothing of the request was applied. Retry against the next gateway (sessions under holders run on, and it adopts them); it never means that a session ended.",
  },
  LOG_UNAVAILABLE: {
    status: 503,
    summary:
      "The event log cannot write (disk full, read-only): no new sessions, runs or appended events. Retry later.",
  },
  SCREEN_UNAVAILABLE: {
    status: 503,
    summary:
      "The session's output broke its screen (xterm threw while parsing it, or it ran the screen thread out of heap), so its screen is not kept until the gateway restarts; the message says what happened. Read its output or transcript instead.",
  },
  NODE_UNAVAILABLE: {
    status: 503,
    summary:
      "Cluster mode: the node that runs the session did not answer a request forwarded to it in time (`node` names it). It was not acted on if that node never read it; retry later.",
  },
  FENCED: {
    status: 503,
    summary:
      "Cluster mode: the node that took the request no longer runs the session (another node took it over, `node` names it). Nothing of the request was applied; send it again.",
  },
  // Not SPAWN_FAILED (422): the request is fine and will work once descriptors are free; a 5xx
  // is what operators alert on. Named for the kind of failure, so other limits can share it.
  RESOURCE_EXHAUSTED: {
    status: 503,
    summary:
      "The gateway or the system is out of file descriptors: nothing can start; the message says which. Retry later.",
  },
  OUTSIDE_ROOTS: {
    status: 403,
    summary:
      "A worktree's repository (or the directory it would be made in) is outside `worktrees.roots`, or the config names no roots: worktrees are off.",
  },
  GIT_FAILED: {
    status: 409,
    summary:
      "A git command failed (a branch checked out elsewhere, a base that is not a commit, not a repository, git missing or too slow); the message quotes git's.",
  },
  WORKTREE_DIRTY: {
    status: 409,
    summary:
      "The worktree has uncommitted changes (untracked files count): commit them, or remove it with `discardChanges=true`. Nothing was stopped or removed.",
  },
  FILE_REFUSED: {
    status: 403,
    summary:
      "A file path escapes the session's working directory (`..`, absolute, a symlink out, a hard-linked file) or names something that is not a regular file; `reason` says which. Nothing was written.",
  },
  FILE_NOT_FOUND: { status: 404, summary: "No such file in the session's working directory." },
  INTERNAL: { status: 500, summary: "An unexpected error; the gateway log has the details." },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/**
 * Who holds a session's control, as every CONTROL_HELD says it: `another connection of NAME` to
 * a caller with the holder's own name (the gateway then sends `holderConnId`), else `NAME`.
 */
export function controlHolder(name: string, ownName: boolean): string {
  return ownName ? `another connection of ${name}` : name;
}

/**
 * "control of this session is held by …" from a CONTROL_HELD's details (`holder`,
 * `holderConnId`), for a client that gives its own advice instead of the gateway's; undefined
 * for another error, or one without a holder.
 */
export function controlHeldText(error: SwitchboardError): string | undefined {
  const name = error.details?.["holder"];
  if (error.code !== "CONTROL_HELD" || typeof name !== "string") return undefined;
  return `control of this session is held by ${controlHolder(name, typeof error.details?.["holderConnId"] === "string")}`;
}

/** The one error type that crosses the wire. Throw it anywhere; the edges turn it into a response. */
export class SwitchboardError extends Error {
  override readonly name: string = "SwitchboardError";
  readonly code: ErrorCode;
  /** Extra fields that travel with the error (e.g. `head` for HISTORY_TRIMMED). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toJSON(): { code: ErrorCode; message: string } & Record<string, unknown> {
    return { ...this.details, code: this.code, message: this.message };
  }
}

/**
 * An unexpected failure inside the gateway (a broken invariant, a failed system call, a bug):
 * code INTERNAL, its message for the gateway log and the operator's terminal only. Every edge
 * treats it as it treats an unknown `Error`: clients get 500 INTERNAL with the generic message,
 * the CLI prints the message without a code and exits 1 (test/protocol/internal-error.test.ts).
 */
export class InternalError extends SwitchboardError {
  override readonly name: string = "InternalError";

  constructor(message: string, options?: ErrorOptions) {
    super("INTERNAL", message);
    if (options !== undefined && "cause" in options) this.cause = options.cause;
  }
}

/**
 * A SwitchboardError meant for the caller: its code and message may cross the wire. False for an
 * {@link InternalError} (and anything not a SwitchboardError), whose words stay in the log.
 */
export function isPublicError(error: unknown): error is SwitchboardError {
  return error instanceof SwitchboardError && !(error instanceof InternalError);
}
