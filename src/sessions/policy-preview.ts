import type { SessionLog } from "../log/session-log.js";
import { eventOf } from "../log/output-entry.js";
import { decide } from "../protocol/index.js";
import type { PermissionPolicy, PolicyPreviewRow } from "../protocol/index.js";

/** The most past permission requests a policy preview answers (the newest). */
export const MAX_PREVIEW_REQUESTS = 200;
/** Events read per page, and pages at most, looking for them (bounds a preview's work on a long log). */
const PREVIEW_PAGE_EVENTS = 1000;
const MAX_PREVIEW_PAGES = 100;
const PREVIEW_EVENTS: ReadonlySet<string> = new Set(["permission.request", "permission.resolved"]);

/**
 * What `policy` would have answered to each of an agent session's past permission requests (the
 * newest {@link MAX_PREVIEW_REQUESTS} its log keeps), beside what they got; `cwd` is the session's.
 */
export function previewPolicy(log: SessionLog, policy: PermissionPolicy, cwd: string): PolicyPreviewRow[] {
  const kept: PolicyPreviewRow[] = [];
  const byId = new Map<string, PolicyPreviewRow>();
  let since = log.first - 1;
  for (let page = 0; page < MAX_PREVIEW_PAGES && since < log.head; page++) {
    const read = log.read(since, { limit: PREVIEW_PAGE_EVENTS, types: PREVIEW_EVENTS });
    for (const entry of read.entries) {
      const event = eventOf(entry);
      if (event.type === "permission.request") {
        const verdict = decide(policy, event, cwd);
        const row: PolicyPreviewRow = {
          seq: event.seq,
          requestId: event.requestId,
          runId: event.runId,
          title: event.title,
          ...(event.toolCall !== undefined ? { toolCall: event.toolCall } : {}),
          rule: verdict.rule,
          answer: verdict.answer,
          ...(verdict.answer !== "ask" ? { optionId: verdict.optionId } : {}),
          ...("reason" in verdict && verdict.reason !== undefined ? { reason: verdict.reason } : {}),
          got: null,
        };
        kept.push(row);
        byId.set(event.requestId, row);
        if (kept.length > MAX_PREVIEW_REQUESTS) byId.delete(kept.shift()!.requestId);
      } else if (event.type === "permission.resolved") {
        const row = byId.get(event.requestId);
        if (row !== undefined)
          row.got = {
            outcome: event.outcome,
            optionId: event.optionId,
            by: event.by?.id ?? event.by?.name ?? null,
          };
      }
    }
    if (read.next <= since) break;
    since = read.next;
  }
  return kept;
}
