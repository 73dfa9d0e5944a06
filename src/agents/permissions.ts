import type { Clock, Timer } from "../core/clock.js";
import type { AppendableLog } from "../log/types.js";
import type { Actor, PermissionPolicy, PolicyVerdict, TimeoutAnswer } from "../protocol/index.js";
import { DEFAULT_POLICY_TIMEOUT_MS, SwitchboardError, TIMEOUT_RULE_NAME, decide, ruleId } from "../protocol/index.js";
import type { PermissionAsk, PermissionOutcome } from "./adapter.js";
import type { AgentLogger } from "./logger.js";

/**
 * How long an unanswered permission request waits for a person, unless the session's permission
 * policy sets `timeoutMs`; it then gets the policy's `onTimeout` answer (default `reject_once`).
 */
export const DEFAULT_PERMISSION_TIMEOUT_MS = DEFAULT_POLICY_TIMEOUT_MS;
/** What an unanswered request gets after its timeout, unless the policy says `onTimeout`. */
export const DEFAULT_ON_TIMEOUT: TimeoutAnswer = "reject_once";
/** Most permission requests one session may have open at once; more are cancelled at once. */
export const MAX_PENDING_PERMISSIONS = 32;

interface Pending {
  requestId: string;
  runId: string;
  optionIds: ReadonlySet<string>;
  /** The option the timeout answers (null: cancelled). */
  onTimeout: string | null;
  timer: Timer;
  resolve: (outcome: PermissionOutcome) => void;
  detach: () => void;
}

export interface PermissionBrokerOptions {
  log: AppendableLog;
  clock: Clock;
  /** How long a request waits when the policy sets no `timeoutMs`. */
  timeoutMs: number;
  /** The session's permission policy now (rules, timeout); read at each request. */
  policy?: () => PermissionPolicy | undefined;
  /** The session's cwd: where a rule's relative path globs and `insideCwd` are taken from. */
  cwd?: string;
  logger?: AgentLogger;
  /** Makes a request id with at least 128 bits of randomness. */
  newId: () => string;
  /**
   * How the log says a viewer answered `requestId` before a restart (a request read again after
   * an adoption, turn-replay.ts): the request is answered so at once.
   */
  loggedAnswer?: (requestId: string) => { optionId: string | null; by: Actor | null } | undefined;
  /** Called whenever the number of open requests changes. */
  onChange: (open: number) => void;
  /** Told of a request cancelled at once because {@link MAX_PENDING_PERMISSIONS} were open (viewers never see it). */
  onOverLimit?: (runId: string, title: string) => void;
}

/** Who a rule's answer is logged as: `by: {name: "rule:NAME", role: "system", id: "rule:NAME"}`. */
export function ruleActor(name: string): Actor {
  const id = ruleId(name);
  return { name: id, role: "system", id };
}

/**
 * The option `answer` picks when a request times out, or null (cancelled): a request without an
 * option of that kind is cancelled, and `why` says so for the log.
 */
function timeoutOption(ask: PermissionAsk, answer: TimeoutAnswer): { optionId: string | null; why?: string } {
  if (answer === "cancelled") return { optionId: null };
  const option = ask.options.find((o) => o.kind === answer);
  if (option !== undefined) return { optionId: option.optionId };
  return { optionId: null, why: `the agent offers no ${answer} option: this request is cancelled at its timeout` };
}

/**
 * The permission requests of one agent session. Every viewer sees `permission.request`; the
 * first valid answer wins and everyone sees `permission.resolved`. An answer to an unknown or
 * already answered id, or with an option that was not offered, is refused and changes nothing.
 */
export class PermissionBroker {
  private readonly pending = new Map<string, Pending>();
  private readonly opts: PermissionBrokerOptions;

  constructor(options: PermissionBrokerOptions) {
    this.opts = options;
  }

  get open(): number {
    return this.pending.size;
  }

  /** Appends `permission.request` and resolves with the outcome. Never rejects. */
  request(runId: string, ask: PermissionAsk, signal?: AbortSignal): Promise<PermissionOutcome> {
    if (signal?.aborted) return Promise.resolve({ outcome: "cancelled" });
    if (this.pending.size >= MAX_PENDING_PERMISSIONS) {
      this.opts.onOverLimit?.(runId, ask.title);
      return Promise.resolve({ outcome: "cancelled" });
    }
    const requestId = this.opts.newId();
    const policy = this.opts.policy?.();
    const timeoutMs = policy?.timeoutMs ?? this.opts.timeoutMs;
    const onTimeout = timeoutOption(ask, policy?.onTimeout ?? DEFAULT_ON_TIMEOUT);
    const verdict = policy === undefined ? undefined : decide(policy, ask, this.opts.cwd ?? "/");
    return new Promise<PermissionOutcome>((resolve) => {
      // Read beside the timer's start and the event's own `ts`: a client counts down from it.
      const expiresAt = this.opts.clock.now() + timeoutMs;
      const timer = this.opts.clock.setTimeout(() => this.timedOut(requestId), timeoutMs);
      const onAbort = (): void => this.settle(requestId, null, null);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(requestId, {
        requestId,
        runId,
        optionIds: new Set(ask.options.map((o) => o.optionId)),
        onTimeout: onTimeout.optionId,
        timer,
        resolve,
        detach: () => signal?.removeEventListener("abort", onAbort),
      });
      this.opts.log.append({
        type: "permission.request",
        runId,
        requestId,
        title: ask.title,
        ...(ask.toolCallId !== undefined ? { toolCallId: ask.toolCallId } : {}),
        ...(ask.toolCall !== undefined ? { toolCall: ask.toolCall } : {}),
        options: ask.options.map((o) => ({ optionId: o.optionId, name: o.name, kind: o.kind })),
        expiresAt,
        ...(verdict !== undefined && verdict.answer !== "ask" ? { rule: verdict.rule } : {}),
      });
      this.opts.onChange(this.pending.size);
      if (onTimeout.why !== undefined)
        this.opts.logger?.warn({ runId, requestId, onTimeout: policy?.onTimeout }, onTimeout.why);
      // Read again after an adoption (turn-replay.ts): the answer the log has, whoever gave it.
      const logged = this.opts.loggedAnswer?.(requestId);
      if (logged !== undefined) this.settle(requestId, logged.optionId, logged.by);
      else if (verdict !== undefined) this.applyVerdict(verdict, runId, requestId);
    });
  }

  /** Answers the request as the first matching rule said; `ask` (or no rule) leaves it to a person. */
  private applyVerdict(verdict: PolicyVerdict, runId: string, requestId: string): void {
    if (verdict.answer !== "ask") {
      this.settle(requestId, verdict.optionId, ruleActor(verdict.rule));
      return;
    }
    if (verdict.rule !== null && "reason" in verdict && verdict.reason !== undefined)
      this.opts.logger?.info(
        { runId, requestId, rule: verdict.rule },
        `permission rule ${verdict.rule} matched but asks a person: ${verdict.reason}`,
      );
  }

  /** `timeoutMs` passed without an answer: the policy's `onTimeout` answer, by `rule:timeout`. */
  private timedOut(requestId: string): void {
    const p = this.pending.get(requestId);
    if (p === undefined) return;
    this.settle(requestId, p.onTimeout, ruleActor(TIMEOUT_RULE_NAME));
  }

  /**
   * Answers an open request.
   * @throws SwitchboardError PERMISSION_REQUEST_NOT_FOUND (unknown, answered or expired id),
   *   INVALID_OPTION (the option was not offered; the request stays open).
   */
  answer(requestId: string, optionId: string, by: Actor): void {
    const p = this.pending.get(requestId);
    if (!p) {
      throw new SwitchboardError("PERMISSION_REQUEST_NOT_FOUND", `no open permission request ${requestId}`);
    }
    if (!p.optionIds.has(optionId)) {
      throw new SwitchboardError(
        "INVALID_OPTION",
        `option ${JSON.stringify(optionId)} is not one of ${[...p.optionIds].map((o) => JSON.stringify(o)).join(", ")}`,
      );
    }
    this.settle(requestId, optionId, by);
  }

  /** Cancels one open request (e.g. the agent withdrew it). */
  cancel(requestId: string): void {
    this.settle(requestId, null, null);
  }

  /** Cancels every open request of a run (abort, run end). */
  /** Whether a request of run `runId` waits for an answer. */
  openFor(runId: string): boolean {
    for (const p of this.pending.values()) if (p.runId === runId) return true;
    return false;
  }

  cancelRun(runId: string, by: Actor | null = null): void {
    for (const p of [...this.pending.values()]) {
      if (p.runId === runId) this.settle(p.requestId, null, by);
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
    for (const p of [...this.pending.values()]) this.settle(p.requestId, null, null);
  }

  private settle(requestId: string, optionId: string | null, by: Actor | null): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    p.timer.cancel();
    p.detach();
    this.opts.log.append({
      type: "permission.resolved",
      runId: p.runId,
      requestId,
      outcome: optionId === null ? "cancelled" : "selected",
      optionId,
      by,
    });
    p.resolve(optionId === null ? { outcome: "cancelled" } : { outcome: "selected", optionId });
    this.opts.onChange(this.pending.size);
  }
}
