import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterTest } from "./cleanup.js";

/** A fresh temporary directory, removed after the test. */
export function tempDir(prefix = "switchboard-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterTest(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
