import { readFileSync } from "node:fs";

/**
 * Switchboard's version, from its package.json (two levels up from this file, in src/ and in
 * dist/ alike): for `switchboard --version` and the MCP handshake. "0.0.0" when it is not
 * there (a bundler moved the code): the version is only informative.
 */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    return "0.0.0";
  }
}
