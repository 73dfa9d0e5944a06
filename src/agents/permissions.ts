import type { Clock, Timer } from "../core/clock.js";
import type { AppendableLog } from "../log/types.js";
import type { Actor } from "../protocol/index.js";
import { SwitchboardError } from "../protocol/index.js";
import type { PermissionAsk, PermissionOutcome } from "./adapter.js";

/** An unanswered permission request counts as cancelled after this long (configurable per session). */
export const DEFAULT_PERMISSION_TIMEOUT_MS = 5 * 60_000;
/** Most permission requests one session may have open at once; more are cancelled at once. */
export const MAX_PENDING_PERMISSIONS = 32;

interface Pending {
  requestId: string;
  runId: string;
  optionIds: ReadonlySet<string>;
  timer: Timer;
  resolve: (outcome: PermissionOutcome) => void;
  detach: () => void;
}

export interface PermissionBrokerOptions {
  log: AppendableLog;
  clock: Clock;
  timeoutMs: number;
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
    const expiresAt = this.opts.clock.now() + this.opts.timeoutMs;
    return new Promise<PermissionOutcome>((resolve) => {
      const timer = this.opts.clock.setTimeout(() => this.settle(requestId, null, null), this.opts.timeoutMs);
      const onAbort = (): void => this.settle(requestId, null, null);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(requestId, {
        requestId,
        runId,
        optionIds: new Set(ask.options.map((o) => o.optionId)),
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
      });
      this.opts.onChange(this.pending.size);
      const logged = this.opts.loggedAnswer?.(requestId);
      if (logged !== undefined) this.settle(requestId, logged.optionId, logged.by);
    });
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
