import type { HttpClient, ShareScope, SwitchboardClient } from "../../src/client/index.js";
import type { SessionStore } from "./session-store.js";

export type Role = "admin" | "operator" | "viewer";

export interface Me {
  name: string;
  role: Role;
  /** Signed in with a share link: the one session it opens (the page shows that only). */
  share?: ShareScope | undefined;
}

/** What every view gets from the app shell. */
export interface AppContext {
  readonly client: SwitchboardClient;
  readonly http: HttpClient;
  readonly store: SessionStore;
  readonly me: Me;
  /** Viewers never steer (docs/ui.md): no typing, no prompts, no control, no new sessions. */
  readonly canSteer: boolean;
  toast(message: string, kind?: "error" | "info"): void;
  navigate(hash: string): void;
  openCreateDialog(kind?: "terminal" | "agent"): void;
  /** "Share" on a session page: null for whoever may not share it (viewers, share links). */
  readonly openShareDialog: ((session: string) => void) | null;
}

/** A routed page. `dispose` releases its subscriptions, listeners and timers. */
export interface View {
  readonly element: HTMLElement;
  dispose(): void;
  /** Read-only state for tests and benchmarks (exposed as `window.__switchboard.view()`). */
  debug?(): unknown;
}
