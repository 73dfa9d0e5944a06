import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * "Is it a copy?" is asked in one place (docs/architecture.md, "Cluster mode"): the session
 * resolver, the cluster room's mirror and takeover, and the session manager that defines
 * `copyOf`. Every other route, frame and notifier asks the resolver (src/server/cluster/session-resolver.ts).
 */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The files that may call `copyOf(`; at most four. */
const ALLOWED = new Set([
  "src/sessions/session-manager.ts",
  "src/server/cluster/session-resolver.ts",
  "src/server/cluster-mirror.ts",
  "src/server/cluster-takeover.ts",
]);
const MAX_FILES = 4;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs)$/.test(name) ? [path] : [];
  });
}

/** Paths of src files that call `copyOf(`, with the cluster room's files matched by name wherever the room puts them. */
function askers(): string[] {
  return sourceFiles(join(REPO, "src"))
    .filter((path) => readFileSync(path, "utf8").includes("copyOf("))
    .map((path) => relative(REPO, path).split("\\").join("/"))
    .sort();
}

function allowed(path: string): boolean {
  if (ALLOWED.has(path)) return true;
  // The cluster room (src/server/cluster/) may take the mirror and takeover under other paths.
  const name = path.split("/").at(-1)!;
  return path.startsWith("src/server/cluster/") && [...ALLOWED].some((a) => a.endsWith(`/${name}`));
}

describe("copy budget", () => {
  it("asks whether a session is a copy in at most four files: the resolver, the cluster room and the session manager", () => {
    const found = askers();
    expect(found.filter((path) => !allowed(path))).toEqual([]);
    expect(found.length).toBeLessThanOrEqual(MAX_FILES);
    // The resolver is one of them: the budget is not met by asking nowhere.
    expect(found).toContain("src/server/cluster/session-resolver.ts");
  });
});
