import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { tempDir } from "../../helpers/tmp.js";
import { CODEX_ACP, GEMINI } from "./agent-packages.js";

/**
 * A `POST /v1/sessions` body for Gemini CLI in a fresh HOME, its Gemini API at `modelUrl` (a
 * scripted server on loopback), with a dummy key: no internet, no developer's credentials.
 * `home` as for claudeSessionBody.
 */
export function geminiSessionBody(
  modelUrl: string,
  homePrefix: string,
  home: string = tempDir(homePrefix),
): Record<string, unknown> {
  mkdirSync(path.join(home, ".gemini"));
  const settings = {
    general: {
      disableAutoUpdate: true,
      disableUpdateNag: true,
      maxAttempts: 2,
      retryFetchErrors: false,
      sessionRetention: { enabled: false },
    },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
  };
  writeFileSync(path.join(home, ".gemini/settings.json"), JSON.stringify(settings));
  return {
    kind: "agent",
    cwd: home,
    agent: {
      adapter: "acp",
      command: [process.execPath, GEMINI, "--acp"],
      env: { HOME: home, TMPDIR: home, GOOGLE_GEMINI_BASE_URL: modelUrl, GEMINI_API_KEY: "dummy" },
      authMethod: "gemini-api-key",
    },
  };
}

/**
 * A `POST /v1/sessions` body for Codex's ACP adapter in a fresh CODEX_HOME, its Responses API at
 * `modelUrl` (a scripted server on loopback). Its approval policy and sandbox are those of its
 * "Default" preset: codex-acp offers its modes (read-only, auto, full-access) only while the
 * session's settings match one of them (with `untrusted` and `danger-full-access` it offers none).
 * `home` as for claudeSessionBody.
 */
export function codexSessionBody(
  modelUrl: string,
  homePrefix: string,
  home: string = tempDir(homePrefix),
): Record<string, unknown> {
  const codexHome = path.join(home, ".codex");
  mkdirSync(codexHome);
  const config = [
    'model = "gpt-5.3-codex"',
    'model_provider = "scripted"',
    'approval_policy = "on-request"',
    'sandbox_mode = "workspace-write"',
    "[model_providers.scripted]",
    'name = "scripted"',
    `base_url = "${modelUrl}/v1"`,
    'wire_api = "responses"',
    'env_key = "SCRIPTED_API_KEY"',
    "request_max_retries = 0",
    "stream_max_retries = 0",
    "",
  ];
  writeFileSync(path.join(codexHome, "config.toml"), config.join("\n"));
  return {
    kind: "agent",
    cwd: home,
    agent: {
      adapter: "acp",
      command: [process.execPath, CODEX_ACP],
      env: { HOME: home, TMPDIR: home, CODEX_HOME: codexHome, SCRIPTED_API_KEY: "dummy" },
    },
  };
}
