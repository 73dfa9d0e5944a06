import { expect } from "vitest";
import { createAgentSession } from "../../../src/agents/index.js";
import type { AdapterContext, AgentAdapter, AgentSession, AgentSpec } from "../../../src/agents/index.js";
import { systemClock } from "../../../src/core/clock.js";
import { EventLog, LOG_BACKLOG_PAUSE_BYTES } from "../../../src/log/index.js";
import { eventOf } from "../../../src/log/output-entry.js";
import type { SessionEvent } from "../../../src/protocol/index.js";
import { HeldStore } from "./held-store.js";
import { waitFor } from "../../helpers/wait-for.js";

export interface Held {
  store: HeldStore;
  agent: AgentSession;
  /** Published events (what a viewer sees), in order. */
  published: SessionEvent[];
}

export interface HeldSessionOptions {
  spec: AgentSpec;
  cwd: string;
  /** Replaces the adapter `spec` names (a plugin's agent). */
  adapter?: (context: AdapterContext) => AgentAdapter;
  sessionId?: string;
}

/**
 * An agent session over a log whose store the test holds back, wired as the gateway wires it
 * (`room: () => log.backlog.room()`); disposed after the test, with the store let go first.
 */
export function heldSession(onTestFinished: (fn: () => Promise<void>) => void, options: HeldSessionOptions): Held {
  const store = new HeldStore();
  const sessionId = options.sessionId ?? "agent";
  const log = new EventLog({ store, clock: systemClock }).create(sessionId);
  const published: SessionEvent[] = [];
  log.subscribe((entry) => published.push(eventOf(entry)));
  const agent = createAgentSession({
    sessionId,
    log,
    room: () => log.backlog.room(),
    spec: options.spec,
    cwd: options.cwd,
    // Far above the floods: this is about the log's bound, not the run's.
    maxRunTextBytes: 1024 * 1024 * 1024,
    ...(options.adapter ? { adapter: options.adapter } : {}),
  });
  onTestFinished(async () => {
    store.stuck = false;
    await agent.dispose();
  });
  return { store, agent, published };
}

/**
 * Waits until the store's backlog is past the pause bound and has stopped growing (unchanged for
 * half a second); returns it. (Unbounded, it stops growing only once the agent is done.) Filling
 * the log's pause bound takes seconds, and on a loaded machine (a full CI run) once took over 20:
 * the callers' tests allow 60.
 */
export async function heldBack(store: HeldStore): Promise<number> {
  let last = -1;
  let since = Date.now();
  return waitFor(
    () => {
      if (store.waitingBytes !== last) {
        last = store.waitingBytes;
        since = Date.now();
        return 0;
      }
      return store.waitingBytes > LOG_BACKLOG_PAUSE_BYTES && Date.now() - since >= 500 ? store.waitingBytes : 0;
    },
    40_000,
    "the backlog to stop growing",
  );
}

/** The run's terminal event, once published. */
export const runEnd = (published: SessionEvent[], runId: string): SessionEvent | undefined =>
  published.find(
    (e) => (e.type === "chat.final" || e.type === "chat.error" || e.type === "chat.aborted") && e.runId === runId,
  );

/** The run's published `chat.delta` texts, joined. */
export const deltas = (published: SessionEvent[], runId: string): string =>
  published.map((e) => (e.type === "chat.delta" && e.runId === runId ? e.text : "")).join("");

/** Seqs 1, 2, 3, … without a gap: nothing was lost between the agent and the viewer. */
export function expectContiguous(published: SessionEvent[]): void {
  expect(published.map((e) => e.seq)).toEqual(Array.from({ length: published.length }, (_, i) => i + 1));
}
