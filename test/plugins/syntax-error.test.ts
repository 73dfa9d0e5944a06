import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { entry, setup } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

/** A plugin folder with `files` (relative path → source), removed after the test. */
function pluginFolder(files: Record<string, string>, onTestFinished: (fn: () => void) => void): string {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-syntax-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), source);
  }
  return dir;
}

/** The plugin's lastError once it names a file (it is looked up after the failure). */
async function locatedError(t: ReturnType<typeof setup>, id: string): Promise<string> {
  return waitFor(() => {
    const error = t.host.get(id).lastError ?? "";
    if (!/ at \S+:\d+/.test(error)) throw new Error(`not located yet: ${error}`);
    return error;
  }, 10_000);
}

// Carried from review: a plugin with a syntax error failed with "SyntaxError: Unexpected token"
// and a stack of Node's module loader, which said nothing of where.
describe("a plugin with a syntax error", () => {
  it("fails with the file, line and source of the error in its entry", async ({ onTestFinished }) => {
    const dir = pluginFolder(
      { "index.mjs": "export default async function activate(api) {\n  const x = ;\n}\n" },
      onTestFinished,
    );
    const t = setup({ limits: { maxRestarts: 0 } });
    await t.host.load({ entries: { broken: entry(dir) } });
    expect(await locatedError(t, "broken")).toBe(
      "SyntaxError: Unexpected token ';' at index.mjs:2\n  const x = ;\n            ^",
    );
    expect(t.host.get("broken").state).toBe("failed");
  });

  it("finds it in a module the entry imports, not in node_modules", async ({ onTestFinished }) => {
    const dir = pluginFolder(
      {
        "index.mjs":
          'import { shout } from "./src/shout.mjs";\nexport default async function activate() { shout(); }\n',
        "src/shout.mjs": "export function shout() {\n  return 1;\n}}\n",
        // Not the plugin's own code: never checked (its error would otherwise be found first).
        "node_modules/dep/a.mjs": "export const = 1;\n",
      },
      onTestFinished,
    );
    const t = setup({ limits: { maxRestarts: 0 } });
    await t.host.load({ entries: { broken: entry(dir) } });
    expect(await locatedError(t, "broken")).toMatch(
      /^SyntaxError: Unexpected token '}' at src\/shout\.mjs:3\n\}\}\n\s*\^$/,
    );
  });
});
