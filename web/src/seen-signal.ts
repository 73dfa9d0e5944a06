import type { HttpClient } from "../../src/client/index.js";
import type { SessionStore } from "./session-store.js";

export interface SeenSignalOptions {
  store: SessionStore;
  http: Pick<HttpClient, "seen">;
  /** The session shown now, if any. */
  openSession: () => string | null;
  /** Viewers cannot clear what needs a steerer's answer: they send nothing. */
  canSteer: boolean;
}

/**
 * Tells the gateway that the session on screen was seen (`POST .../seen`), which ends its
 * `attention` (docs/protocol.md, "Attention"): only while the page is visible and focused, once
 * per attention (its `since`). A refusal (someone else holds control) is left as it is: the mark
 * stays for whoever holds control.
 */
export class SeenSignal {
  /** `id:since` of the attention last sent for: the next store change does not send it again. */
  private sent = "";
  private readonly offStore: () => void;
  private readonly check = (): void => this.update();

  constructor(private readonly options: SeenSignalOptions) {
    this.offStore = options.store.onChange(this.check);
    window.addEventListener("focus", this.check);
    window.addEventListener("hashchange", this.check);
    document.addEventListener("visibilitychange", this.check);
  }

  dispose(): void {
    this.offStore();
    window.removeEventListener("focus", this.check);
    window.removeEventListener("hashchange", this.check);
    document.removeEventListener("visibilitychange", this.check);
  }

  private update(): void {
    if (!this.options.canSteer || document.visibilityState !== "visible" || !document.hasFocus()) return;
    const id = this.options.openSession();
    const attention = id === null ? undefined : this.options.store.get(id)?.attention;
    if (id === null || attention === undefined) return;
    // An open request or question is ended by its answer, not by a look.
    if (attention.reason === "permission" || attention.reason === "elicitation") return;
    const key = `${id}:${attention.since}`;
    if (key === this.sent) return;
    this.sent = key;
    // Refused (CONTROL_HELD, the session ended): nothing to undo, the mark stays as the gateway says.
    this.options.http.seen(id).catch(() => undefined);
  }
}
