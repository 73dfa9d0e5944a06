import type { Clock, Timer } from "../core/clock.js";
import type { AppendableLog } from "../log/types.js";
import type {
  Actor,
  ElicitationEndReason,
  ElicitationProperty,
  ElicitationSchema,
  ElicitationValue,
} from "../protocol/index.js";
import { ElicitationSchema as ElicitationSchemaZ, SwitchboardError } from "../protocol/index.js";

/** An unanswered elicitation is cancelled (the agent gets `cancel`) after this long. */
export const DEFAULT_ELICITATION_TIMEOUT_MS = 10 * 60_000;
/** Most elicitations one session may have open at once; more are answered `cancel` at once. */
export const MAX_PENDING_ELICITATIONS = 8;
/** Longest `message` an agent may send (characters); a longer request is refused. */
export const MAX_ELICITATION_MESSAGE_CHARS = 4000;
/** Largest `requestedSchema` an agent may send (bytes of its JSON); a larger one is refused. */
export const MAX_ELICITATION_SCHEMA_BYTES = 16 * 1024;
/** Longest string an answer may give for one field, whatever the form's `maxLength`. */
export const MAX_ELICITATION_STRING_CHARS = 8000;
/** Longest `url` a url elicitation may send (characters); a longer request is refused. */
export const MAX_ELICITATION_URL_CHARS = 4096;
/** Longest `elicitationId` a url elicitation may send (characters); a longer request is refused. */
export const MAX_ELICITATION_ID_CHARS = 200;

/**
 * What the agent asks: a form to fill in, or (`url`) a page for the user to visit, named by the
 * agent's `elicitationId` so its `elicitation/complete` can say the visit is done.
 */
export type ElicitationAsk =
  | { mode: "form"; message: string; requestedSchema: ElicitationSchema; toolCallId?: string }
  | { mode: "url"; message: string; url: string; elicitationId: string; toolCallId?: string };

/** The answer the agent gets; a url elicitation's `accept` has no content. */
export type ElicitationOutcome =
  { action: "accept"; content?: Record<string, ElicitationValue> } | { action: "decline" } | { action: "cancel" };

/**
 * Reads an agent's `elicitation/create`, or says why it is refused: too long a message, too large
 * a schema, a field of a type the gateway does not serve (an `other` variant), a url that does
 * not parse or is too long. A url's scheme is not checked here: the UI makes a link of http(s)
 * only (web/src/elicitation-form.ts; test/web/ui-hostile-agent.test.ts).
 */
export function readElicitationAsk(params: {
  mode?: unknown;
  message?: unknown;
  requestedSchema?: unknown;
  url?: unknown;
  elicitationId?: unknown;
  toolCallId?: unknown;
}): ElicitationAsk | string {
  if (typeof params.message !== "string") return "message must be a string";
  if (params.message.length > MAX_ELICITATION_MESSAGE_CHARS) {
    return `message is ${params.message.length} characters; at most ${MAX_ELICITATION_MESSAGE_CHARS} (MAX_ELICITATION_MESSAGE_CHARS)`;
  }
  const toolCall = typeof params.toolCallId === "string" ? { toolCallId: params.toolCallId } : {};
  if (params.mode === "url") {
    const { url, elicitationId } = params;
    if (typeof url !== "string" || !URL.canParse(url)) return "url must be an absolute URL";
    if (url.length > MAX_ELICITATION_URL_CHARS) {
      return `url is ${url.length} characters; at most ${MAX_ELICITATION_URL_CHARS} (MAX_ELICITATION_URL_CHARS)`;
    }
    if (typeof elicitationId !== "string" || elicitationId.length === 0) return "elicitationId must be a string";
    if (elicitationId.length > MAX_ELICITATION_ID_CHARS) {
      return `elicitationId is ${elicitationId.length} characters; at most ${MAX_ELICITATION_ID_CHARS} (MAX_ELICITATION_ID_CHARS)`;
    }
    return { mode: "url", message: params.message, url, elicitationId, ...toolCall };
  }
  const bytes = Buffer.byteLength(JSON.stringify(params.requestedSchema ?? null));
  if (bytes > MAX_ELICITATION_SCHEMA_BYTES) {
    return `requestedSchema is ${bytes} bytes; at most ${MAX_ELICITATION_SCHEMA_BYTES} (MAX_ELICITATION_SCHEMA_BYTES)`;
  }
  const raw = dropNulls(params.requestedSchema) as Record<string, unknown> | undefined;
  const parsed = ElicitationSchemaZ.safeParse(raw === undefined ? raw : { type: "object", properties: {}, ...raw });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `requestedSchema is not a form the gateway serves (${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"})`;
  }
  const schema = parsed.data;
  for (const name of schema.required ?? []) {
    if (!(name in schema.properties))
      return `requestedSchema requires ${JSON.stringify(name)}, which it does not define`;
  }
  return { mode: "form", message: params.message, requestedSchema: schema, ...toolCall };
}

/** ACP says omitted and `null` mean the same: nulls are dropped so the schema reads as optional fields. */
function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = dropNulls(v);
  return out;
}

/**
 * Checks an answer's content against the form: only its fields, each of its type and within its
 * bounds, every required one present. `pattern` is not checked: an agent's regular expression run
 * here could take unbounded time (the agent checks it). Test: test/gateway/acp-elicitation.test.ts.
 * @throws SwitchboardError ELICITATION_CONTENT_INVALID naming the field (`details.field`) and why.
 */
export function checkElicitationContent(
  schema: ElicitationSchema,
  content: Readonly<Record<string, unknown>>,
): Record<string, ElicitationValue> {
  const out: Record<string, ElicitationValue> = {};
  for (const [field, value] of Object.entries(content)) {
    const property = schema.properties[field];
    if (property === undefined) throw invalid(field, "is not a field of the form");
    out[field] = checkValue(field, property, value);
  }
  for (const field of schema.required ?? []) {
    if (!(field in out)) throw invalid(field, "is required");
  }
  return out;
}

function checkValue(field: string, p: ElicitationProperty, value: unknown): ElicitationValue {
  switch (p.type) {
    case "boolean":
      if (typeof value !== "boolean") throw invalid(field, "must be true or false");
      return value;
    case "number":
    case "integer": {
      if (typeof value !== "number" || !Number.isFinite(value)) throw invalid(field, "must be a number");
      if (p.type === "integer" && !Number.isInteger(value)) throw invalid(field, "must be an integer");
      if (p.minimum !== undefined && value < p.minimum) throw invalid(field, `must be at least ${p.minimum}`);
      if (p.maximum !== undefined && value > p.maximum) throw invalid(field, `must be at most ${p.maximum}`);
      return value;
    }
    case "string": {
      if (typeof value !== "string") throw invalid(field, "must be a string");
      if (value.length > MAX_ELICITATION_STRING_CHARS) {
        throw invalid(
          field,
          `is longer than ${MAX_ELICITATION_STRING_CHARS} characters (MAX_ELICITATION_STRING_CHARS)`,
        );
      }
      const choices = p.enum ?? p.oneOf?.map((o) => o.const);
      if (choices !== undefined && !choices.includes(value)) {
        throw invalid(field, `must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`);
      }
      if (p.minLength !== undefined && value.length < p.minLength) {
        throw invalid(field, `must be at least ${p.minLength} characters`);
      }
      if (p.maxLength !== undefined && value.length > p.maxLength) {
        throw invalid(field, `must be at most ${p.maxLength} characters`);
      }
      if (p.format !== undefined && !FORMATS[p.format](value)) throw invalid(field, `is not a valid ${p.format}`);
      return value;
    }
    case "array": {
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
        throw invalid(field, "must be a list of strings");
      }
      const choices = p.items?.enum ?? p.items?.anyOf?.map((o) => o.const);
      const other = choices === undefined ? undefined : value.find((v) => !choices.includes(v));
      if (other !== undefined) throw invalid(field, `${JSON.stringify(other)} is not one of its choices`);
      if (new Set(value).size !== value.length) throw invalid(field, "lists a choice twice");
      if (p.minItems !== undefined && value.length < p.minItems)
        throw invalid(field, `needs at least ${p.minItems} choices`);
      if (p.maxItems !== undefined && value.length > p.maxItems)
        throw invalid(field, `takes at most ${p.maxItems} choices`);
      return value as string[];
    }
  }
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

const FORMATS: Record<NonNullable<ElicitationProperty["format"]>, (v: string) => boolean> = {
  email: (v) => /^[^\s@]+@[^\s@]+$/.test(v),
  uri: (v) => URL.canParse(v),
  date: (v) => {
    const m = DATE.exec(v);
    if (!m) return false;
    const d = new Date(`${v}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.getUTCDate() === Number(m[3]);
  },
  "date-time": (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)),
};

function invalid(field: string, why: string): SwitchboardError {
  return new SwitchboardError("ELICITATION_CONTENT_INVALID", `field ${JSON.stringify(field)} ${why}`, {
    field,
    reason: why,
  });
}

interface Pending {
  requestId: string;
  runId: string;
  /** The form, or (url mode) the agent's elicitationId. */
  ask: { mode: "form"; schema: ElicitationSchema } | { mode: "url"; elicitationId: string };
  timer: Timer;
  resolve: (outcome: ElicitationOutcome) => void;
  detach: () => void;
}

export interface ElicitationBrokerOptions {
  log: AppendableLog;
  clock: Clock;
  timeoutMs: number;
  /** Makes a request id with at least 128 bits of randomness. */
  newId: () => string;
  /** Called whenever the number of open elicitations changes. */
  onChange: (open: number) => void;
  /** Told of a request answered `cancel` at once because {@link MAX_PENDING_ELICITATIONS} were open. */
  onOverLimit?: (runId: string) => void;
}

/**
 * The elicitations (ACP `elicitation/create`, form and url mode) of one agent session, as
 * PermissionBroker has its permission requests: every viewer sees `elicitation.request`; the
 * first valid answer wins and everyone sees `elicitation.resolved`. Content that does not match
 * the form is refused and changes nothing; a url elicitation is accepted without content. A
 * timeout, the run's end or the agent withdrawing the request (`signal`, its `$/cancel_request`)
 * resolves it `cancel`; the agent's `elicitation/complete` resolves an open url one `accept`.
 */
export class ElicitationBroker {
  private readonly pending = new Map<string, Pending>();
  private readonly opts: ElicitationBrokerOptions;

  constructor(options: ElicitationBrokerOptions) {
    this.opts = options;
  }

  get open(): number {
    return this.pending.size;
  }

  /** Appends `elicitation.request` and resolves with the outcome. Never rejects. */
  request(runId: string, ask: ElicitationAsk, signal?: AbortSignal): Promise<ElicitationOutcome> {
    if (signal?.aborted) return Promise.resolve({ action: "cancel" });
    if (ask.mode === "url" && this.urlOpen(ask.elicitationId) !== undefined) {
      // Two open requests with one elicitationId: `elicitation/complete` could not tell them apart.
      return Promise.resolve({ action: "cancel" });
    }
    if (this.pending.size >= MAX_PENDING_ELICITATIONS) {
      this.opts.onOverLimit?.(runId);
      return Promise.resolve({ action: "cancel" });
    }
    const requestId = this.opts.newId();
    const expiresAt = this.opts.clock.now() + this.opts.timeoutMs;
    return new Promise<ElicitationOutcome>((resolve) => {
      const timer = this.opts.clock.setTimeout(
        () => this.settle(requestId, { action: "cancel" }, null, "timeout"),
        this.opts.timeoutMs,
      );
      const onAbort = (): void => this.settle(requestId, { action: "cancel" }, null, "agent-cancelled");
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(requestId, {
        requestId,
        runId,
        ask:
          ask.mode === "form"
            ? { mode: "form", schema: ask.requestedSchema }
            : { mode: "url", elicitationId: ask.elicitationId },
        timer,
        resolve,
        detach: () => signal?.removeEventListener("abort", onAbort),
      });
      const common = {
        type: "elicitation.request" as const,
        runId,
        requestId,
        message: ask.message,
        ...(ask.toolCallId !== undefined ? { toolCallId: ask.toolCallId } : {}),
        expiresAt,
      };
      this.opts.log.append(
        ask.mode === "form"
          ? { ...common, mode: "form", requestedSchema: ask.requestedSchema }
          : { ...common, mode: "url", url: ask.url },
      );
      this.opts.onChange(this.pending.size);
    });
  }

  /**
   * Answers an open elicitation.
   * @throws SwitchboardError ELICITATION_NOT_FOUND (unknown, answered or expired id),
   *   ELICITATION_CONTENT_INVALID (content does not match the form; it stays open),
   *   VALIDATION_FAILED (content with anything but a form's `accept`).
   */
  answer(
    requestId: string,
    answer: { action: "accept" | "decline" | "cancel"; content?: Readonly<Record<string, unknown>> | undefined },
    by: Actor,
  ): void {
    const p = this.pending.get(requestId);
    if (!p) throw new SwitchboardError("ELICITATION_NOT_FOUND", `no open elicitation ${requestId}`);
    if (answer.action !== "accept") {
      if (answer.content !== undefined) {
        throw new SwitchboardError(
          "VALIDATION_FAILED",
          `content is sent only with action "accept", not "${answer.action}"`,
        );
      }
      this.settle(requestId, { action: answer.action }, by, "answered");
      return;
    }
    if (p.ask.mode === "url") {
      if (answer.content !== undefined) {
        throw new SwitchboardError("VALIDATION_FAILED", "a url elicitation is accepted without content");
      }
      this.settle(requestId, { action: "accept" }, by, "answered");
      return;
    }
    const content = checkElicitationContent(p.ask.schema, answer.content ?? {});
    this.settle(requestId, { action: "accept", content }, by, "answered");
  }

  /**
   * The agent says the url elicitation `elicitationId` is done (ACP `elicitation/complete`): if it
   * is still open, it resolves `accept` for everyone. Returns whether one was open.
   */
  complete(elicitationId: string): boolean {
    const p = this.urlOpen(elicitationId);
    if (p === undefined) return false;
    this.settle(p.requestId, { action: "accept" }, null, "agent-completed");
    return true;
  }

  private urlOpen(elicitationId: string): Pending | undefined {
    for (const p of this.pending.values()) {
      if (p.ask.mode === "url" && p.ask.elicitationId === elicitationId) return p;
    }
    return undefined;
  }

  /** Whether an elicitation of run `runId` waits for an answer. */
  openFor(runId: string): boolean {
    for (const p of this.pending.values()) if (p.runId === runId) return true;
    return false;
  }

  /** Cancels every open elicitation of a run (abort, run end). */
  cancelRun(runId: string, by: Actor | null = null): void {
    for (const p of [...this.pending.values()]) {
      if (p.runId === runId) this.settle(p.requestId, { action: "cancel" }, by, "run-ended");
    }
  }

  /** Drops every request without an answer or event (the gateway stops; the next one ends them). */
  forget(): void {
    for (const p of this.pending.values()) {
      p.timer.cancel();
      p.detach();
    }
    this.pending.clear();
  }

  /** Cancels everything. Idempotent. */
  dispose(): void {
    for (const p of [...this.pending.values()]) this.settle(p.requestId, { action: "cancel" }, null, "session-ended");
  }

  private settle(requestId: string, outcome: ElicitationOutcome, by: Actor | null, reason: ElicitationEndReason): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    p.timer.cancel();
    p.detach();
    this.opts.log.append({
      type: "elicitation.resolved",
      runId: p.runId,
      requestId,
      action: outcome.action,
      ...(outcome.action === "accept" && outcome.content !== undefined ? { content: outcome.content } : {}),
      by,
      reason,
    });
    p.resolve(outcome);
    this.opts.onChange(this.pending.size);
  }
}
