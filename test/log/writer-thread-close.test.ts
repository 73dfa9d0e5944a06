import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { WriterThread } from "../../src/log/writer-thread.js";
import { tempDir } from "../helpers/tmp.js";

describe("the log's writer thread, closed while it starts", () => {
  // Regression: close() terminated a thread still starting; when its SQLite call then failed
  // (here: a file without the log's tables, or its dir removed), better-sqlite3 threw into a
  // terminating isolate and the whole process aborted ("FATAL ERROR: v8::ToLocalChecked").
  // Each close() waits for its thread's start (~80 ms here, 5x that on a loaded CI), so the loop
  // is bounded by time as well as count: at least one close at each of the 40 delays, then more
  // rounds while the time budget lasts.
  it("never takes the process down: threads closed at every moment of their start, their dirs removed", async () => {
    const stoppedAfterClose: string[] = [];
    const root = tempDir("switchboard-writer-");
    const budgetEnds = Date.now() + 15_000;
    for (let i = 0; i < 150 && (i < 40 || Date.now() < budgetEnds); i++) {
      const dir = mkdtempSync(join(root, "thread-"));
      let closed = false;
      const thread = new WriterThread({
        workerData: { file: join(dir, "log.db"), outputDir: join(dir, "output"), retryMs: 100 },
        onMessage: () => undefined,
        onReady: () => undefined,
        // A start that fails before close() is reported, as it should be; none after.
        onStopped: (reason) => {
          if (closed) stoppedAfterClose.push(reason);
        },
      });
      await new Promise((resolve) => setTimeout(resolve, i % 40));
      closed = true;
      thread.close();
      rmSync(dir, { recursive: true, force: true });
    }
    // The threads told to close finish their start (or fail it) after this.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Closed threads are never reported as stopped, nor started again.
    expect(stoppedAfterClose).toEqual([]);
  }, 120_000);
});
