import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ENV, startTestGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";

/**
 * docs/sdk.md promises that each of its examples runs as it stands. Each example is marked
 * `<!-- example: NAME; prints: A | B -->` before its code block: it runs in its own Node
 * process against a real gateway, must print every `A`, `B` on stdout, and must exit by itself
 * with code 0 (a socket or timer left behind by `close()` would keep it running).
 *
 * The examples import the SDK package, `switchboard-client`, as a user's program does: they are
 * written to a temporary folder whose `node_modules` is this checkout's, where npm linked the
 * workspace packages/client, so Node resolves them through the package's `exports` to its
 * built `dist/` (test/global-setup.ts builds it from src/ first).
 */
const REPO = resolve(import.meta.dirname, "../..");
const DOC = readFileSync(join(REPO, "docs/sdk.md"), "utf8");
/** What the examples may import: the SDK package's entries. */
const ENTRIES = ["switchboard-client", "switchboard-client/node", "switchboard-client/protocol"];
/** A loaded machine needs a while for a process that starts a PTY and an agent. */
const EXAMPLE_TIMEOUT_MS = 60_000;

interface Example {
  name: string;
  prints: string[];
  code: string;
}

function examples(): Example[] {
  const found: Example[] = [];
  const marker = /<!-- example: ([\w-]+); prints: (.*?) -->\n\n```ts\n([\s\S]*?)```/g;
  for (const m of DOC.matchAll(marker)) {
    found.push({ name: m[1]!, prints: m[2]!.split(" | "), code: m[3]! });
  }
  return found;
}

function run(
  file: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ["--import", "tsx", file],
      { cwd: REPO, env, timeout: EXAMPLE_TIMEOUT_MS, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

let gw: TestGateway;
let dir: string;
beforeAll(async () => {
  gw = await startTestGateway();
  dir = mkdtempSync(join(tmpdir(), "switchboard-sdk-docs-"));
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
});
afterAll(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("docs/sdk.md", () => {
  it("has its examples marked (a marker typo would silently drop one)", () => {
    const marked = DOC.match(/<!-- example:/g)?.length ?? 0;
    expect(examples().map((e) => e.name)).toEqual([
      "follow",
      "resume",
      "steer",
      "agent",
      "http",
      "terminal",
      "abort",
      "errors",
    ]);
    expect(marked).toBe(examples().length);
  });

  it("imports only the switchboard-client package, which resolves to its build in this checkout", () => {
    const imported = examples().flatMap((e) => [...e.code.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!));
    expect(imported.length).toBeGreaterThanOrEqual(examples().length);
    for (const specifier of imported) expect(ENTRIES).toContain(specifier);
    const require = createRequire(join(dir, "example.mjs"));
    expect(require.resolve("switchboard-client/node")).toBe(
      join(realpathSync(REPO), "packages/client/dist/client/node.js"),
    );
  });

  for (const example of examples()) {
    it(
      `example "${example.name}" prints what the page says and exits by itself`,
      async () => {
        const file = join(dir, `${example.name}.mts`);
        writeFileSync(file, example.code);
        const result = await run(file, { ...TEST_ENV, SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token });
        expect(result.stderr).toBe("");
        expect(result.code).toBe(0);
        for (const line of example.prints) expect(result.stdout).toContain(line);
      },
      EXAMPLE_TIMEOUT_MS + 5_000,
    );
  }
});
