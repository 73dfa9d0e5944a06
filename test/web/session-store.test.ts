import { describe, expect, it } from "vitest";
import type { HttpClient } from "../../src/client/index.js";
import type { NewEvent, SessionEvent, SessionInfo } from "../../src/protocol/index.js";
import { displayState } from "../../web/src/format.js";
import { SessionStore } from "../../web/src/session-store.js";
import { sessionInfo } from "../helpers/session-info.js";

const admin = { name: "admin", role: "admin" as const };

function agentSession(run: SessionInfo["run"]): SessionInfo {
  return sessionInfo("a1", {
    kind: "agent",
    name: "helper",
    createdAt: 1_000,
    head: 10,
    viewers: 1,
    agent: "echo",
    run,
    lastActivityAt: 1_000,
  });
}

/** A store that is never started: it holds what it is given and the events applied to it. */
function storeWith(session: SessionInfo): SessionStore {
  const store = new SessionStore({} as HttpClient, () => undefined);
  store.upsert(session);
  return store;
}

function apply(store: SessionStore, ...events: NewEvent[]): void {
  for (const [i, e] of events.entries()) store.applyEvent("a1", { ...e, seq: 11 + i, ts: 2_000 + i } as SessionEvent);
}

describe("SessionStore (live list fields from a followed session's events)", () => {
  it("shows an agent idle as soon as Abort all cleared its queue (exploratory test: Working until the next poll)", () => {
    const store = storeWith(agentSession({ active: "r1", queued: 2, activity: "working" }));
    apply(
      store,
      { type: "chat.aborted", runId: "r1", by: admin },
      { type: "chat.aborted", runId: "r2", by: admin },
      { type: "chat.aborted", runId: "r3", by: admin },
    );
    expect(store.get("a1")!.run).toEqual({ active: null, queued: 0, activity: "idle" });
    expect(displayState(store.get("a1")!).label).toBe("Idle");
  });

  it("keeps an agent working on its next prompt after Abort of the active run alone", () => {
    const store = storeWith(agentSession({ active: "r1", queued: 1, activity: "working" }));
    apply(store, { type: "chat.aborted", runId: "r1", by: admin });
    expect(store.get("a1")!.run).toEqual({ active: null, queued: 1, activity: "working" });
    apply(store, { type: "run.started", runId: "r2" });
    expect(store.get("a1")!.run).toEqual({ active: "r2", queued: 0, activity: "working" });
  });
});
