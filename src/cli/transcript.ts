import type { SessionEvent } from "../client/node.js";
import { printable } from "./printable.js";

/** Where a transcript goes: the agent's words, and the lines about what happens around them. */
export interface TranscriptOutput {
  /** The answer's text, as it streams. */
  text: (chunk: string) => void;
  /**
   * Prompts, tool calls, permission requests, errors: `[tool] Read file (completed)`.
   * `midLine`: the answer's text has not ended its line (only with `notesApart`).
   */
  note: (line: string, midLine: boolean) => void;
}

/** How a run ended, once it has. */
export type RunEnd =
  { type: "chat.final" } | { type: "chat.error"; code: string; message: string } | { type: "chat.aborted" };

/**
 * Renders an agent session's events as a conversation for a terminal: each prompt as `> text`
 * when its run starts (so each prompt is followed by its own answer), the answer as it streams,
 * tool calls and permission requests as bracketed lines. With `runId`, only that run's events.
 * @example
 * const t = new Transcript({ text: (s) => process.stdout.write(s), note: (l) => process.stdout.write(`${l}\n`) });
 * for await (const e of http.allEvents(id)) t.push(e);
 */
export class Transcript {
  /** Runs whose answer has printed some text, and whether it ended mid-line. */
  private readonly answered = new Map<string, boolean>();
  private readonly toolStatus = new Map<string, string>();
  /** The options of each permission request seen, to name the one an answer chose. */
  private readonly permissionOptions = new Map<string, Map<string, string>>();
  /** Prompts queued and not shown yet: shown when their run starts (or ends without starting). */
  private readonly queuedPrompts = new Map<string, string>();
  private midLine = false;

  /**
   * @param runId only this run's events
   * @param notesApart notes go somewhere else than the text (stderr, say): the text is
   *   then exactly the answer, with no line breaks added before notes
   * @param sessionId the session's id, to say how to answer a permission request
   */
  constructor(
    private readonly output: TranscriptOutput,
    private readonly options: { runId?: string; notesApart?: boolean; sessionId?: string } = {},
  ) {}

  /** Takes one event; returns how the run ended when this event ended one. */
  push(event: SessionEvent): RunEnd | undefined {
    if (!("runId" in event) || typeof event.runId !== "string") return undefined;
    if (this.options.runId !== undefined && event.runId !== this.options.runId) return undefined;
    if (event.type !== "run.queued") this.showPrompt(event.runId);
    switch (event.type) {
      case "run.queued":
        // Apart from the answer (prompt --wait) the prompt is what the user just typed.
        // (Apart, the caller says what the run waits for: the event does not count the active run.)
        if (!this.options.notesApart) this.queuedPrompts.set(event.runId, event.text);
        return undefined;
      case "chat.delta":
        this.text(event.runId, event.text);
        return undefined;
      case "tool": {
        // A line when a call appears and whenever its status changes, not for every update.
        const key = `${event.runId}/${event.toolCallId}`;
        if (this.toolStatus.get(key) === event.status) return undefined;
        this.toolStatus.set(key, event.status);
        this.note(`[tool] ${event.title ?? event.kind ?? event.toolCallId} (${event.status})`);
        return undefined;
      }
      case "permission.request": {
        this.permissionOptions.set(event.requestId, new Map(event.options.map((o) => [o.optionId, o.name])));
        const how =
          this.options.sessionId === undefined
            ? ""
            : `; to answer: switchboard permission ${this.options.sessionId} ${event.requestId} ${event.options.map((o) => o.optionId).join("|")}`;
        this.note(
          `[permission] ${event.title}: waiting for an answer (${event.options.map((o) => o.name).join(" / ")})${how}`,
        );
        return undefined;
      }
      case "permission.resolved": {
        const chosen =
          event.optionId === null
            ? undefined
            : (this.permissionOptions.get(event.requestId)?.get(event.optionId) ?? event.optionId);
        this.permissionOptions.delete(event.requestId);
        this.note(
          `[permission] ${event.outcome === "selected" ? `${chosen ?? "answered"} (by ${event.by?.name ?? "someone"})` : "cancelled"}`,
        );
        return undefined;
      }
      case "chat.final":
        if (!this.answered.has(event.runId)) this.text(event.runId, event.text);
        // An answer cut short (max_tokens), refused or cancelled says so; end_turn is the usual end.
        if (event.stopReason !== "end_turn") this.note(`[stopped: ${event.stopReason}]`);
        this.endLine();
        return { type: "chat.final" };
      case "chat.error":
        // Not a crash: the agent waits for a login, and the message says how (AGENT_AUTH_REQUIRED).
        this.note(
          event.code === "AGENT_AUTH_REQUIRED"
            ? `[login needed] ${event.message}`
            : `[error] ${event.code}: ${event.message}`,
        );
        return { type: "chat.error", code: event.code, message: event.message };
      case "chat.aborted":
        this.note(`[aborted${event.by ? ` by ${event.by.name}` : ""}]`);
        return { type: "chat.aborted" };
      default:
        return undefined;
    }
  }

  /** The prompt of `runId`, the first time anything of its run is shown. */
  private showPrompt(runId: string): void {
    const prompt = this.queuedPrompts.get(runId);
    if (prompt === undefined) return;
    this.queuedPrompts.delete(runId);
    this.note(`> ${prompt}`);
  }

  private text(runId: string, text: string): void {
    if (text === "") return;
    this.answered.set(runId, true);
    this.output.text(text);
    this.midLine = !text.endsWith("\n");
  }

  private note(text: string): void {
    // A note is one line about the run, made of what the agent and others sent (titles, names).
    const line = printable(text);
    if (this.options.notesApart) {
      this.output.note(line, this.midLine);
      return;
    }
    this.endLine();
    this.output.note(line, false);
  }

  /** Ends the answer's line, so that a note or the next prompt starts on a line of its own. */
  private endLine(): void {
    if (!this.midLine) return;
    this.midLine = false;
    this.output.text("\n");
  }
}
