import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Builds the SDK package (packages/client, `switchboard-client`) from src/ before any test file
 * runs, once per test run: test/client/sdk-docs.test.ts runs docs/sdk.md's examples against it
 * and test/client/package.test.ts packs it, and neither may see a dist/ older than the sources
 * (nor build it in two workers at once). `tsc -b` only compares timestamps when nothing changed.
 */
export default function buildClientPackage(): void {
  const repo = fileURLToPath(new URL("..", import.meta.url));
  const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
  execFileSync(process.execPath, [tsc, "-b", "packages/client/tsconfig.json"], { cwd: repo, stdio: "inherit" });
}
