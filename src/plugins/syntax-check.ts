import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import type { Slot } from "./slot.js";
import type { PluginLogger } from "./types.js";

/**
 * When `slot` failed with a SyntaxError, puts where it is into its `lastError` once found (see
 * {@link locateSyntaxError}), unless the error changed meanwhile, and logs it.
 */
export function explainSyntaxError(slot: Slot, logger: PluginLogger): void {
  const { source, lastError: error } = slot;
  if (source === undefined || error === null || !error.startsWith("SyntaxError: ")) return;
  void locateSyntaxError(source.entryFile, source.dir).then(
    (where) => {
      if (where === undefined || slot.lastError !== error) return;
      slot.lastError = where;
      logger.error({ plugin: slot.id, err: where }, "plugin has a syntax error");
    },
    () => undefined,
  );
}

/** Most files of a plugin's folder checked for the error, the entry first. */
export const SYNTAX_CHECK_MAX_FILES = 200;
/** Longest one `node --check` may take. */
const CHECK_TIMEOUT_MS = 5_000;
/** Folders never searched: dependencies are not the plugin's own code, and hidden ones are tools'. */
const SKIPPED = new Set(["node_modules"]);

/**
 * Where a plugin's SyntaxError is: `import()`'s error says what but not where, so `node --check`
 * (parses, runs nothing) checks the entry file, then up to SYNTAX_CHECK_MAX_FILES others outside
 * `node_modules`, with an empty environment (no NODE_OPTIONS preloads). Resolves with
 * `"<message> at <file>:<line>"` plus the line and caret, or undefined if no file has it.
 */
export async function locateSyntaxError(entryFile: string, pluginDir: string): Promise<string | undefined> {
  const files = [entryFile, ...(await javascriptFiles(pluginDir)).filter((f) => f !== entryFile)];
  for (const file of files.slice(0, SYNTAX_CHECK_MAX_FILES)) {
    const found = await check(file, pluginDir);
    if (found !== undefined) return found;
  }
  return undefined;
}

function check(file: string, pluginDir: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--check", file],
      { env: {}, timeout: CHECK_TIMEOUT_MS, maxBuffer: 256 * 1024 },
      (error, _stdout, stderr) => {
        if (error === null) return resolve(undefined);
        resolve(describe(stderr, file, pluginDir));
      },
    );
  });
}

/**
 * `node --check`'s report — `FILE:LINE`, the source line, a caret line, a blank line, then
 * `SyntaxError: message` and a stack — as one message naming the file relative to the plugin's folder.
 */
function describe(stderr: string, file: string, pluginDir: string): string | undefined {
  const lines = stderr.split("\n");
  const where = /:(\d+)$/.exec(lines[0] ?? "");
  const message = lines.find((l) => /^\w*Error: /.test(l));
  if (where === null || message === undefined) return undefined;
  const source = lines[1] ?? "";
  const caret = /^\s*\^+\s*$/.test(lines[2] ?? "") ? lines[2]! : "";
  return [`${message} at ${relative(pluginDir, file)}:${where[1]}`, source, caret].filter((l) => l !== "").join("\n");
}

/** The `.js`, `.mjs` and `.cjs` files below `dir`, in a stable order, at most SYNTAX_CHECK_MAX_FILES. */
async function javascriptFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(at, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (out.length >= SYNTAX_CHECK_MAX_FILES) return;
      if (entry.name.startsWith(".") || SKIPPED.has(entry.name)) continue;
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile() && /\.(?:m|c)?js$/.test(entry.name)) out.push(path);
    }
  };
  await walk(dir);
  return out;
}
