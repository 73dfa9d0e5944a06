import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterTest } from "./cleanup.js";

/** A fresh temporary directory, removed after the test. */
export function tempDir(prefix = "switchboard-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // Retried: an agent's child that outlives its session by a moment can still write into the
  // directory while it is removed (ENOTEMPTY).
  afterTest(() => rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
  return dir;
}
