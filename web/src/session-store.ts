import { isSwitchboardError, reduceAgentState } from "../../src/client/index.js";
import type { HttpClient } from "../../src/client/index.js";
import type { SessionEvent, SessionInfo } from "../../src/protocol/index.js";

/** The list is re-read this often while the page is visible… */
export const POLL_INTERVAL_MS = 2_000;
/** …and this often while it is hidden (a background tab should cost the gateway little). */
export const POLL_HIDDEN_INTERVAL_MS = 30_000;

export type StoreHealth = { ok: true } | { ok: false; error: Error };

interface Patch {
  at: number;
  fields: Partial<SessionInfo>;
}

/**
 * The sessions the user may see: `GET /v1/sessions` every {@link POLL_INTERVAL_MS}, plus instant
 * updates from the events of sessions a view follows. It subscribes to no session itself: each
 * subscription counts as a viewer, and "3 viewers" should mean people watching. A poll that
 * started before a live update does not undo it: newer patches are laid over its answer.
 */
export class SessionStore {
  private readonly http: HttpClient;
  private readonly sessions = new Map<string, SessionInfo>();
  private readonly patches = new Map<string, Patch>();
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  private _health: StoreHealth = { ok: true };
  private _loaded = false;
  private readonly onVisible = (): void => {
    if (document.visibilityState === "visible") void this.refresh();
  };

  constructor(
    http: HttpClient,
    private readonly onUnauthorized: (error: Error) => void,
  ) {
    this.http = http;
  }

  get health(): StoreHealth {
    return this._health;
  }

  get loaded(): boolean {
    return this._loaded;
  }

  start(): void {
    document.addEventListener("visibilitychange", this.onVisible);
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisible);
    this.listeners.clear();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): SessionInfo[] {
    return [...this.sessions.values()];
  }

  get(id: string): SessionInfo | undefined {
    return this.sessions.get(id);
  }

  /** Re-reads the list now (also what the poll timer calls). */
  refresh(): Promise<void> {
    this.inFlight ??= this.poll().finally(() => {
      this.inFlight = undefined;
      this.schedule();
    });
    return this.inFlight;
  }

  /** A session object fresher than the list (e.g. just created or fetched by a view). */
  upsert(session: SessionInfo): void {
    this.sessions.set(session.id, { ...session, ...this.patches.get(session.id)?.fields });
    this.emit();
  }

  /** Forgets a session that was removed (until a poll says otherwise). */
  remove(id: string): void {
    this.patches.delete(id);
    if (this.sessions.delete(id)) this.emit();
  }

  /**
   * Derives list fields from a live event of a followed session. An event that moves only the
   * last activity (a chunk of an answer, a line of output) is not told to the listeners: an agent
   * streams hundreds a second, and redrawing the list (and the header) for each took as long as
   * the answer itself with 300 sessions listed. The list's clock and the next poll show it.
   */
  applyEvent(id: string, event: SessionEvent): void {
    const s = this.sessions.get(id);
    if (!s) return;
    const fields: Partial<SessionInfo> = { lastActivityAt: Math.max(s.lastActivityAt, event.ts), head: event.seq };
    const run = s.run ? { ...s.run } : null;
    let shown = true;
    switch (event.type) {
      case "exit":
        Object.assign(fields, { state: "exited", exitCode: event.exitCode, signal: event.signal, endedAt: event.ts });
        break;
      case "lost":
        Object.assign(fields, { state: "lost", endedAt: event.ts });
        break;
      case "resumed":
        Object.assign(fields, { state: "running", endedAt: null });
        break;
      case "control":
        fields.controller = event.holder?.name ?? null;
        fields.controllerVia = event.holder?.via ?? null;
        break;
      case "resize":
        Object.assign(fields, { cols: event.cols, rows: event.rows });
        break;
      case "run.queued":
        if (run) {
          if (run.active !== null) run.queued++;
          run.activity = run.activity === "idle" ? "working" : run.activity;
        }
        break;
      case "run.started":
        if (run) Object.assign(run, { active: event.runId, queued: Math.max(0, run.queued - 1), activity: "working" });
        break;
      case "chat.final":
      case "chat.error":
      case "chat.aborted":
        if (!run) break;
        if (run.active === event.runId) run.active = null;
        // Only a queued run ends before it started: "Abort all" clears the queue.
        else if (event.type === "chat.aborted") run.queued = Math.max(0, run.queued - 1);
        if (run.active === null) run.activity = run.queued > 0 ? "working" : "idle";
        break;
      case "permission.request":
      case "elicitation.request":
        if (run) run.activity = "waiting";
        break;
      case "permission.resolved":
      case "elicitation.resolved":
        if (run) run.activity = run.active !== null ? "working" : "idle";
        break;
      case "agent.usage":
        // The list's usage meter follows a viewed agent at once, not at the next poll.
        fields.agentState = reduceAgentState(s.agentState, event);
        break;
      default:
        shown = false;
        break;
    }
    if (run) fields.run = run;
    const previous = this.patches.get(id)?.fields ?? {};
    this.patches.set(id, { at: Date.now(), fields: { ...previous, ...fields } });
    this.sessions.set(id, { ...s, ...fields });
    if (shown) this.emit();
  }

  private async poll(): Promise<void> {
    const started = Date.now();
    try {
      const list = await this.http.listSessions();
      const next = new Map<string, SessionInfo>();
      for (const s of list) {
        const patch = this.patches.get(s.id);
        if (patch && patch.at <= started) this.patches.delete(s.id);
        next.set(s.id, patch && patch.at > started ? { ...s, ...patch.fields } : s);
      }
      this.sessions.clear();
      for (const [id, s] of next) this.sessions.set(id, s);
      this._health = { ok: true };
      this._loaded = true;
    } catch (error) {
      if (isSwitchboardError(error, "UNAUTHORIZED")) {
        this.onUnauthorized(error);
        return;
      }
      this._health = { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
    }
    this.emit();
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const delay = document.visibilityState === "hidden" ? POLL_HIDDEN_INTERVAL_MS : POLL_INTERVAL_MS;
    this.timer = setTimeout(() => void this.refresh(), delay);
  }

  private emit(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
