import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "stack-maps-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A program bundled as dist/cli/main.js is (esbuild, linked source maps, whitespace minified),
 * run as it runs it (source maps on before the bundle loads). `body` runs after the helpers
 * below; the line that makes the error is {@link BOOM_LINE} of fixture.ts.
 */
function run(body: string, plain: boolean): { stdout: string; stderr: string; status: number | null } {
  const source = join(dir, "fixture.ts");
  writeFileSync(
    source,
    [
      `import { mappedStack, plainStacks } from ${JSON.stringify(join(REPO, "src/system/stack-maps.ts"))};`,
      `import { createLogger } from ${JSON.stringify(join(REPO, "src/server/ops/logger.ts"))};`,
      `export function boom(): Error {`,
      `  return new Error("boom");`,
      `}`,
      plain ? "plainStacks();" : "",
      `const log = createLogger({ destination: { write: (line: string) => void process.stdout.write(line) } });`,
      `void mappedStack; void log;`,
      body,
    ].join("\n"),
  );
  const bundle = join(dir, `bundle-${plain}.mjs`);
  buildSync({
    entryPoints: [source],
    outfile: bundle,
    bundle: true,
    format: "esm",
    platform: "node",
    sourcemap: "linked",
    sourcesContent: false,
    minifyWhitespace: true,
    banner: { js: 'import { createRequire as __r } from "node:module"; const require = __r(import.meta.url);' },
    logLevel: "error",
  });
  const start = join(dir, `start-${plain}.mjs`);
  writeFileSync(start, `process.setSourceMapsEnabled(true);\nawait import(${JSON.stringify(bundle)});\n`);
  const result = spawnSync(process.execPath, [start], { encoding: "utf8", timeout: 20_000 });
  return { stdout: result.stdout, stderr: result.stderr, status: result.status };
}

/** fixture.ts's line of `new Error("boom")`. */
const BOOM_LINE = 4;
const AT_BOOM = new RegExp(`at boom \\(${join(dir, "fixture.ts").replaceAll("/", "\\/")}:${BOOM_LINE}:\\d+\\)`);

describe("error stacks under source maps (src/system/stack-maps.ts)", () => {
  it("are formatted plain when read, and name the source's line once mapped", () => {
    const { stdout, status, stderr } = run(
      "const stack = boom().stack!; console.log(JSON.stringify({ stack, mapped: mappedStack(stack) }));",
      true,
    );
    expect(status, stderr).toBe(0);
    const { stack, mapped } = JSON.parse(stdout) as { stack: string; mapped: string };
    // Node's own formatter, which parses the map, did not run: the frame names the bundle.
    expect(stack).toMatch(/^Error: boom\n {4}at boom \(file:\/\/.*\/bundle-true\.mjs:\d+:\d+\)/);
    expect(mapped).toMatch(AT_BOOM);
    expect(mapped.split("\n")).toHaveLength(stack.split("\n").length);
  });

  it("are mapped by Node itself without plainStacks (the fixture's maps are live)", () => {
    const { stdout, status, stderr } = run("console.log(JSON.stringify(boom().stack));", false);
    expect(status, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatch(AT_BOOM);
  });

  it("are mapped in a logged err and in an uncaught exception", () => {
    const logged = run('log.error({ err: boom() }, "failed");', true);
    expect(logged.status, logged.stderr).toBe(0);
    const line = JSON.parse(logged.stdout) as { err: { message: string; stack: string } };
    expect(line.err.message).toBe("boom");
    expect(line.err.stack).toMatch(AT_BOOM);

    const uncaught = run("const e = boom(); void e.stack; throw e;", true);
    expect(uncaught.status).toBe(1);
    expect(uncaught.stderr).toMatch(AT_BOOM);
  });
});
