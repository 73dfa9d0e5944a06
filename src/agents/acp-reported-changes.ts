import { toolCallDiffs } from "../protocol/index.js";
import type { ToolCallDiff } from "../protocol/index.js";
import type { RunSink } from "./adapter.js";
import { isRecord } from "./acp-wire.js";
import type { ConfinedFs } from "./confined-fs.js";
import { FsAccessError } from "./confined-fs.js";
import { fileChange, relativePath } from "./file-change.js";
import type { AgentLogger } from "./logger.js";
import { describeError } from "./logger.js";
import { MAX_TRACKED_TOOL_CALLS } from "./run.js";

export interface ReportedChangesOptions {
  cwd: string;
  fs: Pick<ConfinedFs, "readFile">;
  /** Holds the agent's later messages until released (AcpWire.pause): the change is logged in wire order. */
  pause(): () => void;
  logger: AgentLogger;
  sessionId: string;
}

/**
 * A completed tool call's ACP diff content as `file.change` events (agents that write files
 * themselves: Claude Code). Agents send the edited region, not the whole file, so each is placed
 * in the file as it is now to rebuild the exact change; one that cannot be placed is logged as
 * the region shown (`region: true`). test/gateway/file-changes.test.ts.
 */
export class ReportedChanges {
  private runId: string | undefined;
  /** The latest diffs of each open tool call of the run, the last updated last. */
  private readonly diffs = new Map<string, ToolCallDiff[]>();

  constructor(private readonly options: ReportedChangesOptions) {}

  /** `update` (a `session/update` update) was applied to `run`. */
  noted(update: unknown, run: RunSink): void {
    if (!isRecord(update) || (update.sessionUpdate !== "tool_call" && update.sessionUpdate !== "tool_call_update")) {
      return;
    }
    const toolCallId = update.toolCallId;
    if (typeof toolCallId !== "string") return;
    if (run.runId !== this.runId) {
      this.runId = run.runId;
      this.diffs.clear();
    }
    const diffs = toolCallDiffs({ content: update.content });
    if (diffs.length > 0) {
      this.diffs.delete(toolCallId);
      if (this.diffs.size >= MAX_TRACKED_TOOL_CALLS) this.diffs.delete(this.diffs.keys().next().value!);
      this.diffs.set(toolCallId, diffs);
    }
    if (update.status === "failed") this.diffs.delete(toolCallId);
    if (update.status !== "completed") return;
    const done = this.diffs.get(toolCallId);
    this.diffs.delete(toolCallId);
    if (done === undefined) return;
    const release = this.options.pause();
    void this.log(run, toolCallId, done)
      .catch((err: unknown) => {
        this.options.logger.warn(
          { sessionId: this.options.sessionId, toolCallId, err: describeError(err) },
          "a reported file change could not be logged",
        );
      })
      .finally(release);
  }

  private async log(run: RunSink, toolCallId: string, diffs: ToolCallDiff[]): Promise<void> {
    const byPath = new Map<string, ToolCallDiff[]>();
    for (const diff of diffs) byPath.set(diff.path, [...(byPath.get(diff.path) ?? []), diff]);
    for (const [requested, group] of byPath) {
      const path = relativePath(this.options.cwd, requested);
      const now = await this.current(requested);
      const placed = now === undefined ? undefined : place(group, now);
      if (placed !== undefined) {
        run.fileChange(fileChange({ path, source: "reported", toolCallId, before: placed, after: now ?? null }));
        continue;
      }
      for (const diff of group) {
        const change = { path, source: "reported" as const, toolCallId, before: diff.oldText, after: diff.newText };
        run.fileChange(fileChange({ ...change, region: true }));
      }
    }
  }

  /** The file's text now; null when it does not exist, undefined when it cannot be read. */
  private async current(requested: string): Promise<string | null | undefined> {
    try {
      return (await this.options.fs.readFile(requested)).toString("utf8");
    } catch (err) {
      if (err instanceof FsAccessError && err.reason === "not-found") return null;
      // Outside the cwd, too large, not a file: what the agent reported is all there is.
      if (err instanceof FsAccessError) return undefined;
      throw err;
    }
  }
}

/**
 * The file before the diffs of one path, given the file now (null: gone), or undefined when they
 * cannot be placed in it exactly.
 */
function place(diffs: readonly ToolCallDiff[], now: string | null): string | null | undefined {
  if (now === null) return undefined;
  // Whole-file texts (as ACP says): the last new text is the file, the first old text was.
  if (diffs.at(-1)!.newText === now) return diffs[0]!.oldText;
  let before = now;
  for (const diff of [...diffs].reverse()) {
    if (diff.oldText === null || diff.newText === "") return undefined;
    const at = before.indexOf(diff.newText);
    if (at < 0 || before.indexOf(diff.newText, at + 1) >= 0) return undefined;
    before = before.slice(0, at) + diff.oldText + before.slice(at + diff.newText.length);
  }
  return before;
}
