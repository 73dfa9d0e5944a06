import { execFile } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build, stop } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ENV, startTestGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";

// esbuild's service process ends with the file, which may share its process with the next.
afterAll(() => stop());

/**
 * The SDK ships on its own as `switchboard-client` (packages/client) so that a program that only
 * talks to a gateway does not install the gateway (better-sqlite3 and node-pty compiled from
 * source, pino, the MCP and ACP SDKs: minutes and ~180 MB). This packs it as `npm publish`
 * would (test/global-setup.ts has built it from src/), installs the tarball into an empty
 * project with npm, and uses it there as a user would: a program against a real gateway, and
 * TypeScript resolving its types.
 *
 * The install is offline and needs no npm cache: the SDK's dependencies are packed from this
 * checkout's node_modules and pinned with `overrides`, which only choose the version of a
 * package something already depends on (a dependency missing from the SDK's package.json stays
 * missing), and npm gets an empty cache and a registry where nothing listens.
 * `npm install --offline <tarball>` from the cache `npm ci` filled is not enough: npm resolves
 * `zod@^4.6.7` to the newest version in the cached registry metadata, whose tarball is not
 * cached once a newer zod is out, and `npm ci` caches no metadata at all for a lock with
 * `resolved` URLs.
 */
const REPO = resolve(import.meta.dirname, "../..");
const PACKAGE_DIR = join(REPO, "packages/client");
const NAME = "switchboard-client";
/** What the gateway needs and an SDK user must not get. */
const GATEWAY_ONLY = [
  "better-sqlite3",
  "node-pty",
  "pino",
  "prom-client",
  "@modelcontextprotocol/sdk",
  "@agentclientprotocol/sdk",
];
/**
 * The SDK installed, dependencies included: 6.2 MiB today, 6.0 of them zod's (which ships v3,
 * v4, mini and its locales as ESM, CJS and .d.ts). Installing `switchboard` takes ~130 MB.
 */
const MAX_INSTALLED_BYTES = 16 * 1024 * 1024;
/** Nothing listens here: a registry request would fail rather than reach the network. */
const NO_REGISTRY = "http://127.0.0.1:1/";
/** Packing, installing and two type-checks of a strict consumer on a loaded two-core machine. */
const SETUP_TIMEOUT_MS = 60_000;

interface Run {
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((done, fail) => {
    execFile(
      command,
      args,
      { ...options, timeout: SETUP_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) fail(new Error(`${command} ${args.join(" ")}: ${error.message}\n${stdout}\n${stderr}`));
        else done({ stdout, stderr });
      },
    );
  });
}

/** Every package folder under `dir`'s node_modules, nested ones included, by name. */
function installedPackages(dir: string): string[] {
  const found: string[] = [];
  const visit = (modules: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(modules);
    } catch (error) {
      // A package without a node_modules of its own: nothing nested here.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    for (const entry of entries) {
      if (entry.startsWith(".")) continue; // npm's .package-lock.json, .bin
      const names = entry.startsWith("@") ? readdirSync(join(modules, entry)).map((n) => `${entry}/${n}`) : [entry];
      for (const name of names) {
        found.push(name);
        visit(join(modules, name, "node_modules"));
      }
    }
  };
  visit(join(dir, "node_modules"));
  return found.sort();
}

/** Bytes of the files under `path` (symlinks not followed). */
function treeBytes(path: string): number {
  const stat = lstatSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, entry) => sum + treeBytes(join(path, entry)), 0);
}

/** The non-relative module specifiers a compiled ES module imports (tsc's output: one statement a line). */
function bareImports(code: string): string[] {
  const statements =
    /^(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)";$|^import\s*"([^"]+)";$|\bimport\(\s*"([^"]+)"\s*\)/gm;
  const specifiers = [...code.matchAll(statements)].map((m) => m[1] ?? m[2] ?? m[3]!);
  return specifiers.filter((s) => !s.startsWith("."));
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => !lstatSync(join(dir, f)).isDirectory())
    .sort();
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

let work: string;
let consumer: string;
let packed: string[];
let npmEnv: NodeJS.ProcessEnv;
let installMs: number;
let gw: TestGateway;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "switchboard-client-package-"));
  consumer = join(work, "consumer");
  mkdirSync(join(work, "deps"));
  mkdirSync(consumer);
  // npm refuses one file as both its user and its global config.
  const [userConfig, globalConfig] = [join(work, "user.npmrc"), join(work, "global.npmrc")];
  writeFileSync(userConfig, "");
  writeFileSync(globalConfig, "");
  // npm's own settings only: none of the npm_* variables `npm test` passes down (its prefix
  // would make npm install into this checkout), no user or global npmrc.
  npmEnv = {
    PATH: process.env["PATH"],
    HOME: work,
    npm_config_userconfig: userConfig,
    npm_config_globalconfig: globalConfig,
    npm_config_cache: join(work, "npm-cache"),
    npm_config_registry: NO_REGISTRY,
    npm_config_offline: "true",
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_update_notifier: "false",
  };

  // The SDK as `npm publish` would ship it (scripts off: the global set-up built dist/).
  const pack = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
    cwd: PACKAGE_DIR,
    env: npmEnv,
  });
  const [manifest] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  packed = manifest!.files.map((f) => f.path).sort();

  // Its dependencies, and theirs, as installed (hoisted) in this checkout.
  const deps = new Set<string>();
  const collect = (dir: string): void => {
    const json = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies?: object };
    for (const name of Object.keys(json.dependencies ?? {})) {
      if (deps.has(name)) continue;
      deps.add(name);
      collect(join(REPO, "node_modules", name));
    }
  };
  collect(PACKAGE_DIR);
  const depsDir = join(work, "deps");
  const depPack = await run(
    "npm",
    [
      "pack",
      "--ignore-scripts",
      "--json",
      "--pack-destination",
      depsDir,
      ...[...deps].map((d) => `./node_modules/${d}`),
    ],
    { cwd: REPO, env: npmEnv },
  );
  const overrides = Object.fromEntries(
    (JSON.parse(depPack.stdout) as { name: string; filename: string }[]).map((d) => [
      d.name,
      `file:${join(depsDir, d.filename)}`,
    ]),
  );
  writeFileSync(
    join(consumer, "package.json"),
    JSON.stringify({
      name: "sdk-consumer",
      private: true,
      type: "module",
      dependencies: { [NAME]: `file:${join(work, manifest!.filename)}` },
      overrides,
    }),
  );
  const started = performance.now();
  await run("npm", ["install"], { cwd: consumer, env: npmEnv });
  installMs = performance.now() - started;

  gw = await startTestGateway();
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await gw?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the switchboard-client package", () => {
  it("ships the SDK's build and nothing else: src/client, src/protocol and the UTF-8 helper", () => {
    expect(packed).toContain("package.json");
    expect(packed).toContain("dist/client/node.js");
    expect(packed).toContain("dist/client/node.d.ts");
    expect(packed).toContain("dist/client/index.d.ts");
    expect(packed).toContain("dist/protocol/index.js");
    const outside = packed.filter(
      (f) =>
        f !== "package.json" &&
        f !== "README.md" &&
        !/^dist\/(client|protocol)\/[\w-]+\.(js|d\.ts)$/.test(f) &&
        !/^dist\/core\/utf8-chunker\.(js|d\.ts)$/.test(f),
    );
    expect(outside).toEqual([]);
  });

  it("installs offline with zod and ws only, none of the gateway's dependencies, and is small", () => {
    const installed = installedPackages(consumer);
    const bytes = treeBytes(join(consumer, "node_modules"));
    const own = treeBytes(join(consumer, "node_modules", NAME));
    console.log(
      `${NAME}: npm install (offline, from tarballs) ${(installMs / 1000).toFixed(1)} s; ` +
        `node_modules ${mib(bytes)} in ${installed.length} packages (${installed.join(", ")}), the SDK itself ${(own / 1024).toFixed(0)} KiB`,
    );
    for (const name of GATEWAY_ONLY) expect(installed).not.toContain(name);
    expect(
      installed.filter((n) => n.startsWith("@modelcontextprotocol/") || n.startsWith("@agentclientprotocol/")),
    ).toEqual([]);
    expect(installed).toEqual([NAME, "ws", "zod"]);
    expect(bytes).toBeLessThan(MAX_INSTALLED_BYTES);
  });

  it("keeps node: modules and ws out of every entry but switchboard-client/node", () => {
    const dist = join(consumer, "node_modules", NAME, "dist");
    const imports = new Map<string, string[]>();
    for (const file of files(dist).filter((f) => f.endsWith(".js"))) {
      const bare = bareImports(readFileSync(join(dist, file), "utf8"));
      if (bare.length > 0) imports.set(file, [...new Set(bare)].sort());
    }
    expect(Object.fromEntries(imports)).toEqual({
      "client/node.js": ["ws"],
      "protocol/agent-state.js": ["zod"],
      "protocol/attention.js": ["zod"],
      "protocol/devices.js": ["zod"],
      "protocol/events.js": ["zod"],
      "protocol/frames.js": ["zod"],
      "protocol/nodes.js": ["zod"],
      "protocol/permission-policy.js": ["zod"],
      "protocol/prompt-content.js": ["zod"],
      "protocol/push.js": ["zod"],
      "protocol/screen.js": ["zod"],
      "protocol/search.js": ["zod"],
      "protocol/sessions.js": ["zod"],
      "protocol/shares.js": ["zod"],
      "protocol/turns.js": ["zod"],
      "protocol/worktrees.js": ["zod"],
    });
  });

  /** `program` (in the consumer project) bundled for a browser and minified: its size and the files in it. */
  async function bundle(name: string, program: string): Promise<{ bytes: number; inputs: string[] }> {
    const entry = join(consumer, name);
    writeFileSync(entry, program);
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      minify: true,
      metafile: true,
    });
    const inputs = Object.keys(Object.values(result.metafile.outputs)[0]!.inputs);
    return { bytes: result.outputFiles[0]!.contents.length, inputs };
  }
  const zodFiles = (inputs: string[]) => inputs.filter((file) => file.includes("node_modules/zod/"));

  // Found by an SDK user: importing only isSwitchboardError bundled all of zod (471 KB), since
  // a bundler must keep modules that may have side effects ("sideEffects": false says none has).
  it("lets a bundler drop what a program does not use: an error helper alone bundles without zod", async () => {
    const { bytes, inputs } = await bundle(
      "only-errors.mjs",
      'import { isSwitchboardError } from "switchboard-client";\nconsole.log(isSwitchboardError(1));\n',
    );
    expect(zodFiles(inputs)).toEqual([]);
    expect(bytes).toBeLessThan(32 * 1024);
  });

  // A program that only calls the HTTP API (a script, a serverless function) bundled all of zod
  // (475 KB): HttpClient took inputTooLarge from protocol/sessions.ts, which builds schemas when loaded.
  it("lets a bundler drop zod from a program that uses only the HTTP client", async () => {
    const { bytes, inputs } = await bundle(
      "only-http.mjs",
      'import { HttpClient } from "switchboard-client";\nconsole.log(await new HttpClient({ url: location.origin }).whoami());\n',
    );
    expect(zodFiles(inputs)).toEqual([]);
    expect(inputs.some((file) => file.endsWith("client/http.js"))).toBe(true);
    expect(bytes).toBeLessThan(32 * 1024);
  });

  it("lets a bundler drop zod from a program that keeps an agent's state with reduceAgentState", async () => {
    const { inputs } = await bundle(
      "agent-state.mjs",
      'import { reduceAgentState } from "switchboard-client";\nconsole.log(reduceAgentState(undefined, { seq: 1, ts: 0, type: "agent.usage", used: 1, size: 2 }));\n',
    );
    expect(zodFiles(inputs)).toEqual([]);
    expect(inputs.some((file) => file.endsWith("protocol/agent-state-reducer.js"))).toBe(true);
  });

  it("runs a program that uses switchboard-client/node: creates a session on a gateway and reads its output", async () => {
    writeFileSync(
      join(consumer, "follow.mjs"),
      `import { connect, isSwitchboardError } from "switchboard-client/node";
import { OutputView } from "switchboard-client";
import { ERROR_CODES } from "switchboard-client/protocol";

const client = await connect({ url: process.env.SWITCHBOARD_URL, token: process.env.SWITCHBOARD_TOKEN });
const session = await client.createSession({ command: ["sh", "-c", "echo hello from $0; exit 7", "a session"] });
const view = new OutputView();
const end = await client.subscribe(session.id, { since: 0 }, (event) => view.push(event)).done;
const missing = await client.getSession("no-such-session").catch((error) => error);
console.log(JSON.stringify({
  output: view.text(),
  exitCode: end?.exitCode,
  notFound: isSwitchboardError(missing, "SESSION_NOT_FOUND") && ERROR_CODES.SESSION_NOT_FOUND.status,
}));
client.close();
`,
    );
    const { stdout, stderr } = await run(process.execPath, ["follow.mjs"], {
      cwd: consumer,
      env: { ...TEST_ENV, SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token },
    });
    expect(stderr).toBe("");
    expect(JSON.parse(stdout)).toEqual({ output: "hello from a session\n", exitCode: 7, notFound: 404 });
  });

  it(
    "type-checks a Node consumer (moduleResolution node16) and a browser one (bundler)",
    async () => {
      writeFileSync(
        join(consumer, "node.ts"),
        `import { connect, OutputView } from "switchboard-client/node";
import type { SessionEvent } from "switchboard-client";
import { ERROR_CODES } from "switchboard-client/protocol";
import type { ErrorCode } from "switchboard-client/protocol";

const client = await connect({ url: process.env["SWITCHBOARD_URL"]!, token: process.env["SWITCHBOARD_TOKEN"] });
const view = new OutputView();
const seen: SessionEvent[] = [];
const sub = client.subscribe("id", { since: 0 }, (event) => {
  view.push(event);
  seen.push(event);
});
const end = await sub.done;
const code: ErrorCode = "SESSION_NOT_FOUND";
console.log(end?.type === "exit" ? end.exitCode : null, ERROR_CODES[code].status, view.text());
// @ts-expect-error: an unknown error code (the types are real, not any)
const wrong: ErrorCode = "NO_SUCH_CODE";
void wrong;
`,
      );
      writeFileSync(
        join(consumer, "browser.ts"),
        `import { HttpClient, SwitchboardClient, isSwitchboardError } from "switchboard-client";
import type { SessionInfo } from "switchboard-client";
import { ERROR_CODES } from "switchboard-client/protocol";

const client = new SwitchboardClient({ url: location.origin });
const http = new HttpClient({ url: location.origin });
const info: Promise<SessionInfo> = http.getSession("id");
info.catch((error: unknown) => {
  if (isSwitchboardError(error, "SESSION_NOT_FOUND")) document.title = String(ERROR_CODES.SESSION_NOT_FOUND.status);
});
// @ts-expect-error: cols is a number
void client.resize("id", { cols: "80", rows: 24 });
`,
      );
      const strict = { strict: true, noEmit: true, skipLibCheck: false, target: "ES2022" };
      const configs = {
        // A Node project: Node's types (from this checkout; a user installs @types/node), no DOM.
        "tsconfig.node16.json": {
          compilerOptions: {
            ...strict,
            module: "node16",
            moduleResolution: "node16",
            lib: ["ES2022"],
            types: ["node"],
            typeRoots: [join(REPO, "node_modules/@types")],
          },
          files: ["node.ts"],
        },
        // A browser bundle: the DOM, no Node types.
        "tsconfig.bundler.json": {
          compilerOptions: {
            ...strict,
            module: "esnext",
            moduleResolution: "bundler",
            lib: ["ES2022", "DOM", "DOM.Iterable"],
            types: [],
          },
          files: ["browser.ts"],
        },
      };
      const tsc = join(REPO, "node_modules/typescript/bin/tsc");
      const checks = Object.entries(configs).map(([file, config]) => {
        writeFileSync(join(consumer, file), JSON.stringify(config));
        return run(process.execPath, [tsc, "-p", file], { cwd: consumer, env: TEST_ENV });
      });
      for (const { stdout } of await Promise.all(checks)) expect(stdout).toBe("");
    },
    SETUP_TIMEOUT_MS,
  );
});
