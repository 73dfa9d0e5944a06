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

/**
 * Who may call `copyOf(`: the session manager that defines it, and the cluster room — the
 * resolver, the mirror and the takeover, wherever the room keeps them (today the mirror and
 * takeover are still at the top of src/server). At most four files in all.
 */
const DEFINED_IN = "src/sessions/session-manager.ts";
const CLUSTER_ROOM = [
  "src/server/cluster/",
  "src/server/cluster/cluster-mirror.ts",
  "src/server/cluster/cluster-takeover.ts",
];
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
  return path === DEFINED_IN || CLUSTER_ROOM.some((room) => path.startsWith(room));
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
