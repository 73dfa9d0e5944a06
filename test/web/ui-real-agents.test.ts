// Claude Code, Gemini CLI and Codex (the ACP adapters in node_modules) through one gateway and one
// browser, their model APIs pointed at scripted servers on loopback (no key, no internet): each
// agent's page shows its modes and models as the agent sent them (the current one selected), its
// usage in the header's meter and its commands in the composer's slash menu, and a mode or model
// picked in the page reaches the agent and shows back once it confirmed. The three run side by side.
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import type { AgentState } from "../../src/protocol/index.js";
import { claudeSessionBody } from "../agents/helpers/claude-session.js";
import { codexSessionBody, geminiSessionBody } from "../agents/helpers/gemini-codex-sessions.js";
import { startAnthropicServer } from "../agents/model-servers/anthropic.js";
import { startGeminiServer } from "../agents/model-servers/gemini.js";
import { startOpenAiResponsesServer } from "../agents/model-servers/openai-responses.js";
import type { ScriptedModelServer } from "../agents/model-servers/scripted-model.js";
import { waitFor } from "../helpers/wait-for.js";
import { SCREENSHOTS, sharedStack, useBrowser } from "./ui-helpers.js";
import type { Stack } from "./ui-helpers.js";

useBrowser();
const shared = sharedStack();

/** The three agents start side by side (Gemini CLI alone takes about 11 s on a loaded machine). */
const TIMEOUT_MS = 150_000;
const RUN_END_MS = 90_000;
/** Small enough that a screenshot holds the header, the answer and the slash menu (docs/ui.md). */
const SHOT = { width: 1280, height: 640 };

type AgentName = "claude" | "gemini" | "codex";

/**
 * What each agent sends (its version pinned in package.json) and what the test picks: its modes
 * and the one it starts in, its model option's starting value, commands it names, and the mode
 * and model a user picks (none for Claude Code's model: real-agent-choices.test.ts switches it).
 */
interface AgentCase {
  name: string;
  start(): Promise<ScriptedModelServer>;
  body(modelUrl: string): Record<string, unknown>;
  modes: string[];
  mode: string;
  model: string;
  commands: string[];
  pick: { mode: string; model?: string };
  /** A mode the agent refuses here, and what its refusal says. */
  refused?: { mode: string; message: RegExp };
  /** Whether it sends ACP `usage_update` (Gemini CLI 0.61 does not: its prompt answer's `_meta.quota` has token counts only). */
  usage: boolean;
  /** The model a turn request asked for. */
  requested(body: unknown, path: string): string;
}

const AGENTS: Record<AgentName, AgentCase> = {
  claude: {
    name: "Claude Code",
    start: startAnthropicServer,
    body: (url) => claudeSessionBody(url, "sb-ui-claude-"),
    modes: ["default", "acceptEdits", "plan", "auto", "bypassPermissions"],
    mode: "default",
    model: "default",
    commands: ["compact", "init", "code-review", "security-review"],
    pick: { mode: "plan" },
    usage: true,
    requested: (body) => (body as { model: string }).model,
  },
  gemini: {
    name: "Gemini CLI",
    start: startGeminiServer,
    body: (url) => geminiSessionBody(url, "sb-ui-gemini-"),
    // Gemini CLI refuses autoEdit and yolo in a folder it does not trust (these temporary ones).
    modes: ["default", "autoEdit", "yolo", "plan"],
    mode: "default",
    model: "auto",
    commands: ["memory", "init", "restore", "about", "help"],
    pick: { mode: "plan", model: "gemini-2.5-pro" },
    refused: { mode: "yolo", message: /Cannot enable privileged approval modes in an untrusted folder/ },
    usage: false,
    requested: (_body, path) => /\/models\/([^:]+):streamGenerateContent/.exec(path)?.[1] ?? "",
  },
  codex: {
    name: "Codex",
    start: startOpenAiResponsesServer,
    body: (url) => codexSessionBody(url, "sb-ui-codex-"),
    modes: ["read-only", "auto", "full-access"],
    mode: "auto",
    model: "gpt-5.3-codex",
    commands: ["review", "review-branch", "review-commit", "init", "compact", "logout"],
    pick: { mode: "read-only", model: "gpt-5.4" },
    usage: true,
    requested: (body) => (body as { model: string }).model,
  },
};

type Event = { type: string; runId?: string; [k: string]: unknown };

/** Prompts `text` and waits for the run's end; its end event. */
async function prompt(s: Stack, id: string, text: string): Promise<Event> {
  const sent = await s.http.post(`/v1/sessions/${id}/prompt`, { text });
  expect(sent.status, sent.text).toBe(202);
  const runId = sent.json.runId as string;
  return waitFor(
    async () =>
      ((await s.http.get(`/v1/sessions/${id}/events`)).json.events as Event[]).find(
        (e) => e.runId === runId && (e.type === "chat.final" || e.type === "chat.error"),
      ),
    RUN_END_MS,
    `the end of the run of "${text}"`,
  );
}

async function agentState(s: Stack, id: string): Promise<AgentState> {
  return (await s.http.get(`/v1/sessions/${id}`)).json.agentState as AgentState;
}

/** A picker's options (values) and its value. */
async function picker(page: Page, test: string): Promise<{ values: string[]; value: string }> {
  const select = page.locator(`[data-test=${test}]`);
  const values = await select.locator("option").evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  return { values, value: await select.inputValue() };
}

/** The commands the composer's slash menu lists. */
function slashMenu(page: Page): Promise<string[]> {
  return page.$$eval("[data-testid=slash-menu]:not([hidden]) [data-command]", (items) =>
    items.map((i) => (i as HTMLElement).dataset["command"] ?? ""),
  );
}

/**
 * One agent: a first prompt starts it (its state comes with its session and first turn), its page
 * shows its modes, models and the current ones, its usage and its commands; a mode and model
 * picked in the page reach it.
 */
async function showsItsChoices(s: Stack, agent: AgentName): Promise<void> {
  const a = AGENTS[agent];
  const server = await a.start();
  try {
    server.setScript(() => ({ text: "ready." }));
    const created = await s.http.post("/v1/sessions", { ...a.body(server.url), name: a.name });
    expect(created.status, created.text).toBe(201);
    const id = created.json.id as string;
    expect(await prompt(s, id, "hello"), a.name).toMatchObject({ type: "chat.final" });

    // Commands come in their own notification, which an agent may send after its first turn ends.
    const state = await waitFor(
      async () => {
        const now = await agentState(s, id);
        return now.commands !== undefined ? now : undefined;
      },
      RUN_END_MS,
      `${a.name}'s commands`,
    );
    expect(state.modes, a.name).toMatchObject({ currentModeId: a.mode });
    expect(
      state.modes!.availableModes.map((m) => m.id),
      a.name,
    ).toEqual(a.modes);
    expect(state.model, a.name).toBe(a.model);
    const models = state.configOptions!.find((o) => o.category === "model")!.options!.map((o) => o.value);
    expect(
      state.commands!.map((c) => c.name),
      a.name,
    ).toEqual(expect.arrayContaining(a.commands));
    // The scripted turn counts 10 tokens in and 5 out.
    if (a.usage) expect(state.usage, a.name).toMatchObject({ used: 15, size: expect.any(Number) });
    else expect(state.usage, a.name).toBeUndefined();

    const page = await s.page({ hash: `#/s/${id}`, viewport: SHOT });
    await page.waitForSelector("[data-test=mode-picker]:not([hidden])");
    expect(await picker(page, "mode-picker"), a.name).toEqual({ values: a.modes, value: a.mode });
    expect(await picker(page, "model-picker"), a.name).toEqual({ values: models, value: a.model });
    // Its usage in the header's meter, as the agent last sent it.
    const meter = page.locator(".view-head [data-testid=usage-meter]");
    if (a.usage) {
      expect(await meter.getAttribute("data-used"), a.name).toBe(String(state.usage!.used));
      expect(await meter.getAttribute("data-size"), a.name).toBe(String(state.usage!.size));
    } else expect(await meter.count(), a.name).toBe(0);
    // Its commands in the composer's slash menu, all of them, in the agent's order.
    await page.focus(".prompt-input");
    await page.keyboard.type("/");
    await page.waitForSelector("[data-testid=slash-menu]:not([hidden]) [data-command]");
    expect(await slashMenu(page), a.name).toEqual(state.commands!.map((c) => c.name));
    await page.screenshot({ path: `${SCREENSHOTS}agent-${agent}.png` });
    await page.fill(".prompt-input", "");

    if (a.refused !== undefined) {
      // Refused: the page says why and shows the mode the agent is still in.
      await page.selectOption("[data-test=mode-picker]", a.refused.mode);
      expect(await page.locator(".toast-error").textContent(), a.name).toMatch(a.refused.message);
      await page.waitForSelector("[data-test=mode-picker]:not([disabled])");
      expect((await picker(page, "mode-picker")).value, a.name).toBe(a.mode);
      expect((await agentState(s, id)).modes!.currentModeId, a.name).toBe(a.mode);
    }
    await page.selectOption("[data-test=mode-picker]", a.pick.mode);
    await page.waitForSelector("[data-test=mode-picker]:not([disabled])");
    if (a.pick.model !== undefined) {
      await page.selectOption("[data-test=model-picker]", a.pick.model);
      await page.waitForSelector("[data-test=model-picker]:not([disabled])");
    }
    const chosen = await agentState(s, id);
    expect(chosen.modes!.currentModeId, a.name).toBe(a.pick.mode);
    expect(chosen.model, a.name).toBe(a.pick.model ?? a.model);
    // The page shows what the agent confirmed, from the events it follows.
    expect((await picker(page, "mode-picker")).value, a.name).toBe(a.pick.mode);
    expect((await picker(page, "model-picker")).value, a.name).toBe(a.pick.model ?? a.model);
    if (a.pick.model === undefined) return;

    // The next turn asks the model API for the model picked.
    const turns = server.received.filter((r) => r.kind === "turn").length;
    expect(await prompt(s, id, "again"), a.name).toMatchObject({ type: "chat.final" });
    const turn = server.received.filter((r) => r.kind === "turn")[turns]!;
    expect(a.requested(turn.body, turn.path), a.name).toBe(a.pick.model);
  } finally {
    await server.close();
  }
}

describe("Claude Code, Gemini CLI and Codex in the web UI", () => {
  it(
    "each agent's page shows its modes, models, usage and commands, and a pick reaches the agent",
    async () => {
      const s = shared();
      await Promise.all((Object.keys(AGENTS) as AgentName[]).map((agent) => showsItsChoices(s, agent)));
    },
    TIMEOUT_MS,
  );
});
