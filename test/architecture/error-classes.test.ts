import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * Every error src throws is a SwitchboardError with a stable code (docs/protocol.md, "Error
 * classes"): `InternalError` for unexpected failures, which every edge hides as it hides an
 * unknown Error (test/protocol/internal-error.test.ts). This test fails on a new bare
 * `new Error(` or a new class extending `Error` itself; the exceptions are listed here, each
 * with why, and the count per file may only go down.
 */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Files that may build a bare Error, and how many times. */
const BARE_ERRORS_ALLOWED: Record<string, number> = {
  // Errno-style errors (`Object.assign(new Error(m), { code })`) whose `code` is a Node or
  // JSON-RPC code read by their callers, not an ErrorCode.
  "src/log/group-commit.ts": 1,
  "src/agents/confined-fs.ts": 1,
  "src/mcp/server.ts": 1,
  // The SDK's reconnect loop gives up with what the socket threw; SDK users would see a
  // SwitchboardError there instead, so it stays a plain Error (a client-side failure).
  "src/client/reconnect-loop.ts": 1,
  // Plain .mjs loaded as is by a worker thread or the plugin sandbox: they cannot import src/protocol.
  "src/log/output-files.mjs": 1,
  "src/plugins/runner/main.mjs": 1,
};

/** Classes that may extend Error itself. */
const ERROR_CLASSES_ALLOWED: Record<string, string[]> = {
  // The plugin sandbox runs plugin code in its own process with nothing of src loaded.
  "src/plugins/runner/plugin-error.mjs": ["PluginError"],
  // The SDK's client-side failure (no gateway answered): its codes are not gateway ErrorCodes,
  // and SDK users tell it from a SwitchboardError with `instanceof`.
  "src/client/errors.ts": ["ConnectionError"],
  // CLI only: a command-line mistake, told apart by type to print the usage and exit 2; it never
  // crosses the wire, and its --json code USAGE is not a gateway ErrorCode.
  "src/cli/exit-codes.ts": ["UsageError"],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs)$/.test(name) && !name.endsWith(".d.ts") && !name.endsWith(".d.mts") ? [path] : [];
  });
}

const files = sourceFiles(join(REPO, "src")).map((path) => ({
  file: relative(REPO, path),
  // Comments may name the pattern; only code counts.
  code: readFileSync(path, "utf8").replace(/\/\*[\s\S]*?\*\/|(^|[^:"'`])\/\/.*$/gm, "$1"),
}));

describe("errors in src", () => {
  it("builds no bare Error outside the allow-list", () => {
    const found: Record<string, number> = {};
    for (const { file, code } of files) {
      const n = code.match(/\bnew Error\(/g)?.length ?? 0;
      if (n > 0) found[file] = n;
    }
    expect(found).toEqual(BARE_ERRORS_ALLOWED);
  });

  it("declares no class extending Error itself outside the allow-list", () => {
    const found: Record<string, string[]> = {};
    for (const { file, code } of files) {
      const names = [...code.matchAll(/\bclass\s+(\w+)\s+extends\s+(?:Error|TypeError|RangeError)\b/g)].map(
        (m) => m[1]!,
      );
      if (names.length > 0) found[file] = names;
    }
    expect(found).toEqual({ ...ERROR_CLASSES_ALLOWED, "src/protocol/errors.ts": ["SwitchboardError"] });
  });
});
