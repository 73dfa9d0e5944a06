import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

/**
 * docs/plugins.md tells TypeScript authors to `import type { PluginApi } from "switchboard"`,
 * and the package root exported nothing (TS2305). A plugin is type-checked here as its author
 * would, strict, with Node's module resolution (as test/client/package.test.ts checks the SDK's
 * consumers), against the sources the package's declarations are emitted from: `"switchboard"`
 * is mapped to src/index.ts, whose build is the `"."` export's dist/index.d.ts.
 *
 * In process, and only the plugin's file is checked (what it uses of the sources is checked as
 * it is used): `tsc` on the project checks every body of the ~20 sources it pulls in, zod's
 * schemas among them, 10-15 s on a loaded machine; this takes 1-2 s.
 */
const REPO = resolve(import.meta.dirname, "../..");
/** Loading the compiler and checking, on a loaded two-core machine. */
const CHECK_TIMEOUT_MS = 60_000;

const PLUGIN = `import type { PluginActivate, PluginAgentRun, PluginApi, HttpHookRequest } from "switchboard";

const activate: PluginActivate = async (api: PluginApi) => {
  api.log.info("starting", { id: api.id, config: api.config.get() });
  await api.http.onRequest(async (request: HttpHookRequest) => ({ status: 200, body: request.body }));
  await api.agents.register("shout", async (run: PluginAgentRun) => {
    await run.delta(run.text.toUpperCase());
    return { text: "", stopReason: run.signal.aborted ? "cancelled" : "end_turn" };
  });
  const keys: string[] = await api.state.keys();
  api.log.debug("keys", { keys });
  // @ts-expect-error: a log message is a string (the types are real, not any)
  api.log.info(42);
  // @ts-expect-error: no such API
  void api.network;
  return async () => {};
};
export default activate;
`;

const work = mkdtempSync(join(tmpdir(), "switchboard-plugin-types-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The diagnostics of `file` (options, syntax and types), as `tsc -p` would print them. */
function typeCheck(configFile: string, file: string): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    configFile,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (config === undefined) throw new Error(`cannot read ${configFile}`);
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
  const source = program.getSourceFile(file);
  if (source === undefined) throw new Error(`${file} is not in the program`);
  return [
    ...config.errors,
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...program.getSyntacticDiagnostics(source),
    ...program.getSemanticDiagnostics(source),
  ].map((d) => `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

describe('the package root ("switchboard")', () => {
  it("is what the package exports at its root, and holds no code: importing it runs nothing", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { exports: Record<string, string> };
    expect(pkg.exports["."]).toBe("./dist/index.js");
    const compiled = ts.transpileModule(readFileSync(join(REPO, "src/index.ts"), "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    }).outputText;
    expect(compiled.replace(/\/\/.*$/gm, "").trim()).toBe("export {};");
  });

  it(
    'types a plugin written as docs/plugins.md says: import type { PluginApi } from "switchboard" (exploratory test: TS2305)',
    () => {
      writeFileSync(join(work, "package.json"), JSON.stringify({ name: "my-plugin", private: true, type: "module" }));
      writeFileSync(join(work, "index.mts"), PLUGIN);
      writeFileSync(
        join(work, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target: "ES2022",
            module: "node16",
            moduleResolution: "node16",
            lib: ["ES2022"],
            types: ["node"],
            typeRoots: [join(REPO, "node_modules/@types")],
            paths: { switchboard: [join(REPO, "src/index.ts")] },
          },
          files: ["index.mts"],
        }),
      );
      expect(typeCheck(join(work, "tsconfig.json"), join(work, "index.mts"))).toEqual([]);
    },
    CHECK_TIMEOUT_MS,
  );
});
