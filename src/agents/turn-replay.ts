import type { AppendableLog } from "../log/types.js";
import type { Actor, NewEvent, SessionEvent } from "../protocol/index.js";

/**
 * The events applying the agent's stdout can append (the rest — prompts, answers of viewers, run
 * ends — have other causes and are never suppressed).
 */
const REPLAYED_TYPES: ReadonlySet<string> = new Set([
  "chat.delta",
  "chat.thought",
  "chat.abandoned",
  "tool",
  "plan",
  "run.notice",
  "permission.request",
  "elicitation.request",
  "child",
]);

const isReplayed = (type: string): boolean => REPLAYED_TYPES.has(type) || type.startsWith("agent.");

/** A viewer's answer to a permission request, as the log has it. */
export interface LoggedAnswer {
  optionId: string | null;
  by: Actor | null;
}

/**
 * The log an adopted agent appends to while the stdout past the kept cursor is read again: events
 * the log already has (`ahead`) are dropped — text by characters, other kinds by count — and what
 * follows is appended. A re-read permission request keeps its logged id and logged answer.
 * Tests: test/agents/turn-replay.test.ts, held-turn-chaos.test.ts.
 */
export class TurnReplay implements AppendableLog {
  readonly sessionId: string;
  private readonly log: AppendableLog;
  /** Characters of text already logged and not yet read again, per kind. */
  private readonly chars = new Map<string, number>();
  /** Events already logged and not yet produced again, per type, oldest first. */
  private readonly events = new Map<string, SessionEvent[]>();
  private readonly answers = new Map<string, LoggedAnswer>();
  /** Requests answered in the log whose `permission.resolved` is to be dropped once. */
  private readonly resolvedAhead = new Set<string>();

  /**
   * `runId`: the run that goes on (undefined: none). Another run's events after the cursor are
   * not produced again: the end of the run before it (its last text, `chat.final`) is appended
   * after the agent's answer is applied, so after a cursor past that answer.
   */
  constructor(log: AppendableLog, ahead: readonly SessionEvent[], runId: string | undefined) {
    this.log = log;
    this.sessionId = log.sessionId;
    for (const event of ahead) {
      if ("runId" in event && typeof event.runId === "string" && event.runId !== runId) continue;
      if (event.type === "permission.resolved") {
        this.answers.set(event.requestId, { optionId: event.optionId, by: event.by });
        this.resolvedAhead.add(event.requestId);
        continue;
      }
      if (!isReplayed(event.type)) continue;
      if (event.type === "chat.delta" || event.type === "chat.thought") {
        this.chars.set(event.type, (this.chars.get(event.type) ?? 0) + event.text.length);
        continue;
      }
      const list = this.events.get(event.type) ?? [];
      list.push(event);
      this.events.set(event.type, list);
    }
  }

  /** Whether everything logged ahead has been produced again (appends go straight to the log). */
  get caughtUp(): boolean {
    for (const n of this.chars.values()) if (n > 0) return false;
    for (const list of this.events.values()) if (list.length > 0) return false;
    return true;
  }

  /** Expects nothing again: the run that went on is over (what comes now is new). */
  stop(): void {
    this.chars.clear();
    this.events.clear();
    this.resolvedAhead.clear();
  }

  /** A request answered before the restart was read again and not handled: its one event (`type`) is not expected again. */
  skip(type: string | undefined): void {
    if (type !== undefined) this.events.get(type)?.shift();
  }

  /** The id the next `permission.request` was logged with, when it is one read again. */
  nextPermissionId(): string | undefined {
    const next = this.events.get("permission.request")?.[0];
    return next?.type === "permission.request" ? next.requestId : undefined;
  }

  /** How a viewer answered `requestId` before the restart, if the log says. */
  loggedAnswer(requestId: string): LoggedAnswer | undefined {
    return this.answers.get(requestId);
  }

  append(event: NewEvent): SessionEvent {
    if (event.type === "chat.delta" || event.type === "chat.thought") {
      const skip = this.chars.get(event.type) ?? 0;
      if (skip > 0) {
        if (event.text.length <= skip) {
          this.chars.set(event.type, skip - event.text.length);
          return { ...event, seq: 0, ts: 0 } as SessionEvent;
        }
        this.chars.set(event.type, 0);
        return this.log.append({ ...event, text: event.text.slice(skip) });
      }
      return this.log.append(event);
    }
    if (event.type === "permission.resolved" && this.resolvedAhead.delete(event.requestId)) {
      return { ...event, seq: 0, ts: 0 } as SessionEvent;
    }
    const logged = this.events.get(event.type)?.shift();
    if (logged !== undefined) return logged;
    return this.log.append(event);
  }
}
