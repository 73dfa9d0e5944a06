/**
 * Where the published agent adapters the real-agent tests run are installed: a package of their
 * own, test/agents/packages (its own lockfile), that `npm test`'s set-up installs
 * (scripts/test-deps.sh), so that `npm ci` of the project stays lean (docs/agents.md, "Real agents").
 */
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(new URL("../packages/package.json", import.meta.url));

/** The path of `specifier` in test/agents/packages, or an error saying how to install it. */
function resolveAgent(specifier: string): string {
  try {
    return require.resolve(specifier);
  } catch (error) {
    throw new Error(
      `${specifier} is not installed: the real-agent tests take it from test/agents/packages, which "bash scripts/test-deps.sh" (npm test's pretest) installs (npm ci --prefix test/agents/packages)`,
      { cause: error },
    );
  }
}

/** Claude Code's ACP adapter, run with node. */
export const CLAUDE_ACP = resolveAgent("@agentclientprotocol/claude-agent-acp/dist/index.js");
/** Gemini CLI's bundle, run with node and `--acp`. */
export const GEMINI = path.join(path.dirname(resolveAgent("@google/gemini-cli/package.json")), "bundle", "gemini.js");
/** Codex's ACP adapter (its binary in a per-platform optional package), run with node. */
export const CODEX_ACP = resolveAgent("@zed-industries/codex-acp/bin/codex-acp.js");
