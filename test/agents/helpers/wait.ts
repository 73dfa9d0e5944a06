import type { MemoryLog } from "../../../src/agents/index.js";
import type { EventOf, EventType, SessionEvent } from "../../../src/protocol/index.js";

/** Resolves with the first event (already in the log or still to come) that matches, or fails after `timeoutMs`. */
export function waitForEvent<T extends EventType>(
  log: MemoryLog,
  type: T,
  predicate: (event: EventOf<T>) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<EventOf<T>> {
  const matches = (e: SessionEvent): e is EventOf<T> => e.type === type && predicate(e as EventOf<T>);
  const found = log.events.find(matches);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no ${type} event within ${timeoutMs} ms; log: ${log.events.map((e) => e.type).join(", ")}`));
    }, timeoutMs);
    const unsubscribe = log.subscribe((e) => {
      if (!matches(e)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(e);
    });
  });
}

/** The terminal event of a run, once it is appended. */
export function waitForRunEnd(log: MemoryLog, runId: string, timeoutMs = 15_000): Promise<SessionEvent> {
  const isEnd = (e: SessionEvent): boolean =>
    (e.type === "chat.final" || e.type === "chat.error" || e.type === "chat.aborted") && e.runId === runId;
  const found = log.events.find(isEnd);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(
        new Error(`run ${runId} did not end within ${timeoutMs} ms; log: ${log.events.map((e) => e.type).join(", ")}`),
      );
    }, timeoutMs);
    const unsubscribe = log.subscribe((e) => {
      if (!isEnd(e)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(e);
    });
  });
}

/** The events of one run, in log order. */
export function runEvents(log: MemoryLog, runId: string): SessionEvent[] {
  return log.events.filter((e) => "runId" in e && e.runId === runId);
}

/** Concatenated `chat.delta` texts of a run. */
export function deltaText(log: MemoryLog, runId: string): string {
  return runEvents(log, runId)
    .filter((e) => e.type === "chat.delta")
    .map((e) => (e.type === "chat.delta" ? e.text : ""))
    .join("");
}

/** Lets pending promise continuations and I/O callbacks run. */
export const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
