import { existsSync, realpathSync, statSync } from "node:fs";
import { opendir, readFile, readlink, realpath } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { SwitchboardError } from "../protocol/index.js";
import { isInside } from "../system/path-inside.js";

/**
 * How a plugin process is started: Node's permission model with the narrowest grants.
 * Verified on Node 20.20 by test/plugins/escape.test.ts.
 */

/** `--permission` where the model is stable (Node 22.13+/23.5+), `--experimental-permission` before (Node 20). */
export function permissionFlag(flags: ReadonlySet<string> = process.allowedNodeEnvironmentFlags): string {
  return flags.has("--permission") ? "--permission" : "--experimental-permission";
}

/**
 * Node 20 splits `--allow-fs-*` values on commas and treats `*` as a wildcard, so a folder
 * named `/tmp/x,/` would grant `/`. Paths with either are refused rather than escaped.
 */
const UNSAFE_GRANT_CHARS = /[,*\n\r\0]/;

function assertGrantable(path: string, what: string): void {
  if (!isAbsolute(path)) throw new SwitchboardError("CONFIG_INVALID", `${what} must be an absolute path: ${path}`);
  if (UNSAFE_GRANT_CHARS.test(path))
    throw new SwitchboardError(
      "CONFIG_INVALID",
      `${what} may not contain a comma or '*' (Node's permission flags would misread it): ${path}`,
    );
}

/** The runner's entry module, in its folder (`SandboxArgsOptions.runnerDir`). */
export const RUNNER_ENTRY = "main.mjs";

export interface SandboxArgsOptions {
  /** The runner's folder: a plugin may read all of it, so it holds the runner's modules and nothing else. */
  runnerDir: string;
  pluginDir: string;
  stateDir: string;
  heapMb: number;
  flags?: ReadonlySet<string>;
}

/**
 * The node command line of a plugin process (without `process.execPath`). No
 * `--allow-child-process`, no `--allow-worker`, no `--allow-addons`, no `--allow-wasi`: under
 * the permission model each of those is denied when not granted; `--no-addons` is added for
 * depth. Reads: the runner's folder (its modules only), the plugin's folder, its state folder.
 * Writes: its state folder.
 */
export function sandboxArgs(options: SandboxArgsOptions): string[] {
  for (const [path, what] of [
    [options.runnerDir, "the plugin runner's folder"],
    [options.pluginDir, "a plugin folder"],
    [options.stateDir, "a plugin state folder"],
  ] as const)
    assertGrantable(path, what);
  const flags = options.flags ?? process.allowedNodeEnvironmentFlags;
  const args = [
    permissionFlag(flags),
    `--allow-fs-read=${withSlash(options.runnerDir)}`,
    `--allow-fs-read=${withSlash(options.pluginDir)}`,
    `--allow-fs-read=${withSlash(options.stateDir)}`,
    `--allow-fs-write=${withSlash(options.stateDir)}`,
    "--no-addons",
    `--max-old-space-size=${options.heapMb}`,
  ];
  // The permission model's ExperimentalWarning on every start is noise in the gateway log.
  if (flags.has("--disable-warning")) args.push("--disable-warning=ExperimentalWarning");
  args.push(join(options.runnerDir, RUNNER_ENTRY));
  return args;
}

function withSlash(dir: string): string {
  return dir.endsWith(sep) ? dir : dir + sep;
}

export interface ResolvedPlugin {
  /** Real path of the folder the plugin may read. */
  dir: string;
  /** Real path of its entry module, inside `dir`. */
  entry: string;
}

/** Entry files looked for in a plugin folder without a `package.json` `main`. */
const DEFAULT_ENTRIES = ["index.mjs", "index.js"] as const;

/**
 * Resolves a plugin's configured `path` (folder or entry file) to real paths, following
 * symlinks first: the permission model follows symlinks, so grants are made on real paths.
 * Refuses a folder that contains any of `protectedPaths` (the data dir, the config file):
 * granting read on it would expose the gateway's token and database.
 */
export async function resolvePlugin(
  configuredPath: string,
  options: { baseDir: string; protectedPaths: readonly string[] },
): Promise<ResolvedPlugin> {
  const absolute = resolve(options.baseDir, configuredPath);
  if (!existsSync(absolute)) throw new SwitchboardError("PLUGIN_NOT_FOUND", `plugin path does not exist: ${absolute}`);
  const real = realpathSync(absolute);
  let dir: string;
  let entry: string | undefined;
  if (statSync(real).isDirectory()) {
    dir = real;
    entry = await packageMain(dir);
    if (entry === undefined)
      entry = DEFAULT_ENTRIES.map((name) => join(dir, name)).find((candidate) => existsSync(candidate));
    if (entry === undefined)
      throw new SwitchboardError(
        "PLUGIN_NOT_FOUND",
        `plugin folder ${dir} has no package.json "main" and no ${DEFAULT_ENTRIES.join(" or ")}`,
      );
    entry = realpathSync(entry);
  } else {
    dir = dirname(real);
    entry = real;
  }
  if (!isInside(dir, entry))
    throw new SwitchboardError("CONFIG_INVALID", `plugin entry ${entry} is outside its folder ${dir}`);
  if (dir === sep) throw new SwitchboardError("CONFIG_INVALID", "a plugin folder cannot be the file system root");
  for (const protectedPath of options.protectedPaths) {
    const p = existsSync(protectedPath) ? realpathSync(protectedPath) : resolve(protectedPath);
    if (isInside(dir, p))
      throw new SwitchboardError(
        "CONFIG_INVALID",
        `plugin folder ${dir} contains ${p}, which plugins must not read; give the plugin its own folder`,
      );
  }
  assertGrantable(dir, "a plugin folder");
  await assertNoEscapingLinks(dir);
  return { dir, entry };
}

/** Entries `assertNoEscapingLinks` looks at before it gives up (and refuses the folder). */
export const PLUGIN_FOLDER_MAX_ENTRIES = 50_000;

/**
 * Node's permission model follows symbolic links, even to places outside the granted paths
 * (documented, and verified on Node 20.20: `<plugin>/data -> ~/.switchboard` would expose the
 * token). A plugin cannot create links at run time (`fs.symlink` needs full read and write
 * permission), but it can ship them, so a folder holding a link that leads outside is refused.
 */
export async function assertNoEscapingLinks(dir: string, maxEntries = PLUGIN_FOLDER_MAX_ENTRIES): Promise<void> {
  let seen = 0;
  const pending = [dir];
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    for await (const dirent of await opendir(current)) {
      if (++seen > maxEntries)
        throw new SwitchboardError(
          "CONFIG_INVALID",
          `plugin folder ${dir} has more than ${maxEntries} entries; bundle the plugin to check it for escaping links`,
        );
      const path = join(current, dirent.name);
      if (dirent.isDirectory()) pending.push(path);
      else if (dirent.isSymbolicLink()) {
        const target = await realpath(path).catch(async () => resolve(current, await readlink(path)));
        if (!isInside(dir, target))
          throw new SwitchboardError(
            "CONFIG_INVALID",
            `plugin folder ${dir} holds a symbolic link leading outside it (${path} -> ${target}); Node's permission model would follow it`,
          );
      }
    }
  }
}

async function packageMain(dir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, "package.json"), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let pkg: unknown;
  try {
    pkg = JSON.parse(text);
  } catch (error) {
    throw new SwitchboardError(
      "CONFIG_INVALID",
      `${join(dir, "package.json")} is not valid JSON: ${(error as Error).message}`,
    );
  }
  const main = (pkg as { main?: unknown } | null)?.main;
  if (typeof main !== "string") return undefined;
  const entry = resolve(dir, main);
  if (!existsSync(entry))
    throw new SwitchboardError("PLUGIN_NOT_FOUND", `package.json main ${main} does not exist in ${dir}`);
  return entry;
}
