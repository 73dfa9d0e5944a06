import type { SessionInfo } from "../../src/protocol/index.js";
import { displayState, sessionTitle } from "./format.js";

/** Why a session wants someone: a permission request, an agent done with its prompts, an end. */
export type AlertReason = "permission" | "finished" | "exited";

export interface SessionAlert {
  sessionId: string;
  reason: AlertReason;
  title: string;
  body: string;
}

/** What of a session the alerts follow. */
interface Seen {
  running: boolean;
  activity: "idle" | "working" | "waiting" | null;
}

/**
 * Turns successive session lists (each poll, each live update) into alerts: a session that
 * starts waiting for a permission answer, an agent whose runs are all done, a session that
 * ended. What the first list shows is the state at load, not news: it raises nothing.
 */
export class AlertEvents {
  private seen: Map<string, Seen> | null = null;

  next(list: readonly SessionInfo[]): SessionAlert[] {
    const previous = this.seen;
    const seen = new Map<string, Seen>();
    const alerts: SessionAlert[] = [];
    for (const s of list) {
      const now: Seen = { running: s.state === "running", activity: s.run?.activity ?? null };
      seen.set(s.id, now);
      if (previous === null) continue;
      // A session first seen already ended or waiting (started and done between two polls) is news too.
      const before = previous.get(s.id) ?? { running: true, activity: null };
      const alert = change(s, before, now);
      if (alert) alerts.push(alert);
    }
    this.seen = seen;
    return alerts;
  }
}

function change(s: SessionInfo, before: Seen, now: Seen): SessionAlert | null {
  const name = sessionTitle(s);
  if (before.running && !now.running) {
    return {
      sessionId: s.id,
      reason: "exited",
      title: `${name}: ${displayState(s).label}`,
      body: "The session ended.",
    };
  }
  if (!now.running) return null;
  if (now.activity === "waiting" && before.activity !== "waiting") {
    return {
      sessionId: s.id,
      reason: "permission",
      title: `${name} needs an answer`,
      body: "The agent asks for permission and waits until someone answers.",
    };
  }
  // Working, or waiting on an answer, then idle (a poll may miss the working between them).
  if (now.activity === "idle" && (before.activity === "working" || before.activity === "waiting")) {
    return {
      sessionId: s.id,
      reason: "finished",
      title: `${name} is done`,
      body: s.lastLine ?? "The agent finished and waits for a prompt.",
    };
  }
  return null;
}

/** How many sessions wait for someone now: an agent's permission request blocks it until answered. */
export function waitingCount(list: readonly SessionInfo[]): number {
  return list.filter((s) => displayState(s).state === "waiting").length;
}
