import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { tempDir } from "../../helpers/tmp.js";
import { CLAUDE_ACP } from "./agent-packages.js";

/**
 * A `POST /v1/sessions` body for Claude Code's ACP adapter in a fresh HOME, its model API at
 * `modelUrl` (a scripted server on loopback): no key, no internet, no developer's credentials.
 * `home`: an empty directory the caller removes (a concurrent test's own clean-up), else a
 * temporary one removed after the test.
 */
export function claudeSessionBody(
  modelUrl: string,
  homePrefix: string,
  home: string = tempDir(homePrefix),
): Record<string, unknown> {
  mkdirSync(path.join(home, ".claude"));
  writeFileSync(path.join(home, ".claude/settings.json"), '{"permissions":{"defaultMode":"default"}}');
  return {
    kind: "agent",
    cwd: home,
    agent: {
      adapter: "acp",
      // Without a developer's own credentials, whatever the environment holds.
      command: ["env", "-u", "ANTHROPIC_AUTH_TOKEN", "-u", "CLAUDE_CODE_OAUTH_TOKEN", process.execPath, CLAUDE_ACP],
      env: {
        HOME: home,
        TMPDIR: home,
        ANTHROPIC_BASE_URL: modelUrl,
        ANTHROPIC_API_KEY: "dummy",
        IS_SANDBOX: "1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        CLAUDE_CODE_MAX_RETRIES: "0",
      },
    },
  };
}
