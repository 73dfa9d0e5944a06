/**
 * Review before you approve, in a real browser (set-up in ./ui-helpers.ts): the scripted agent
 * (test/agents/fixtures/scripted-agent.mjs, op "edit") asks to edit a file; the permission card
 * shows the tool's kind and the edit's unified diff; once allowed, the agent writes the file
 * through the gateway and the run's Changes panel, and the session's, list it with its diff. On
 * a desktop and on a phone viewport. A worktree session's header shows its branch and dirty
 * state and its diff against the base; a file picked with Upload lands in its working directory.
 */
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { gitRepo } from "../helpers/git-repo.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";
import { claudeSessionBody } from "../agents/helpers/claude-session.js";
import { startAnthropicServer } from "../agents/model-servers/anthropic.js";
import { SCRIPTED_AGENT } from "./held-agent.js";
import { DESKTOP, PHONE, SCREENSHOTS, sharedPage, sharedStack, useBrowser } from "./ui-helpers.js";
import type { Stack } from "./ui-helpers.js";

useBrowser();
/** Where the worktree test's repository lives: the gateway's only worktrees root. */
const WORKTREE_ROOT = realpathSync(tempDir());
const shared = sharedStack({ worktrees: { roots: [WORKTREE_ROOT] } });
/** The desktop page of the tests that need no page of their own (see sharedPage). */
const reused = sharedPage();

const OLD = 'export function parseList(s) {\n  return s.split(",");\n}\n\nexport const VERSION = 1;\n';
const NEW =
  'export function parseList(s) {\n  return s.split(",").filter((x) => x !== "");\n}\n\nexport const VERSION = 2;\n';

/** An agent session on a fresh directory holding `src/parser.ts`, its page open at `viewport`. */
async function editSession(s: Stack, viewport: { width: number; height: number }) {
  const cwd = tempDir();
  mkdirSync(path.join(cwd, "src"));
  const file = path.join(cwd, "src", "parser.ts");
  writeFileSync(file, OLD);
  const agent = { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] };
  const created = await s.http.post("/v1/sessions", { kind: "agent", agent, cwd, name: "review-bot" });
  const id = created.json.id as string;
  const page =
    viewport === DESKTOP
      ? await reused(s, { hash: `#/s/${id}` })
      : await s.page({ hash: `#/s/${id}`, viewport, touch: viewport === PHONE });
  const script = {
    op: "edit",
    path: file,
    oldText: OLD,
    content: NEW,
    permission: true,
    id: "edit-parser",
    title: "Edit src/parser.ts",
  };
  await s.http.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify(script) });
  return { id, page, file };
}

/** Whether no element of the page is wider than the viewport (nothing scrolls sideways). */
async function fitsWidth(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}

describe("reviewing an agent's edits", () => {
  for (const [name, viewport] of [
    ["desktop", DESKTOP],
    ["phone", PHONE],
  ] as const) {
    it(`shows the edit's diff before approval and the run's changes after it (${name})`, async () => {
      const s = shared();
      const { id, page, file } = await editSession(s, viewport);
      const card = page.locator(".permission[data-resolved=false]");
      await card.locator("[data-test=permission-diff]").waitFor();
      expect(await card.locator("[data-test=permission-kind]").textContent()).toBe("edit");
      const diff = await card.locator("[data-test=permission-diff]").innerText();
      // Named relative to the session's directory (the agent sent the absolute path).
      expect(diff).toContain("src/parser.ts");
      expect(diff).not.toContain(path.dirname(path.dirname(file)));
      expect(diff).toContain("+2 −2");
      expect(diff).toContain('-  return s.split(",");');
      expect(diff).toContain('+  return s.split(",").filter((x) => x !== "");');
      expect(diff).toContain("-export const VERSION = 1;");
      expect(await card.locator("[data-option=yes]").textContent()).toBe("Apply edit");
      expect(await fitsWidth(page)).toBe(true);
      if (name === "phone") await card.screenshot({ path: `${SCREENSHOTS}permission-edit-diff.png` });

      await card.locator("[data-option=yes]").click();
      await page.waitForSelector(".run[data-status=done] [data-test=run-changes]");
      expect(readFileSync(file, "utf8")).toBe(NEW);
      // The tool card shows the diff the agent reported.
      expect(await page.locator(".tool [data-test=tool-diff]").innerText()).toContain("+export const VERSION = 2;");

      await page.click("[data-test=run-changes] > summary");
      const listed = page.locator("[data-test=run-changes] [data-test=changed-file]");
      await listed.first().waitFor();
      expect(await listed.count()).toBe(1);
      expect(await listed.getAttribute("data-path")).toBe("src/parser.ts");
      const shown = await listed.innerText();
      expect(shown).toContain("+2 −2");
      expect(shown).toContain("@@ -1,5 +1,5 @@");
      expect(shown).toContain("+export const VERSION = 2;");
      expect(await fitsWidth(page)).toBe(true);
      if (name === "phone")
        await page.locator("[data-test=run-changes]").screenshot({ path: `${SCREENSHOTS}run-changes.png` });

      // The session's list, from the header, across runs; each file collapses.
      await page.click("[data-test=session-changes-button]");
      const session = page.locator("[data-test=session-changes] [data-test=changed-file]");
      await session.first().waitFor();
      expect(await session.getAttribute("data-path")).toBe("src/parser.ts");
      await session.locator("summary").click();
      expect(await session.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
      expect(id).not.toBe("");
    });
  }

  // Real Claude Code (its ACP adapter from node_modules, the model a scripted Anthropic server on
  // loopback) asked to write a new file: Claude writes it itself and reports the diff.
  it("shows Claude Code's Write in its permission card and in the run's changes", async ({ onTestFinished }) => {
    const server = await startAnthropicServer();
    onTestFinished(() => server.close());
    const s = shared();
    const body = claudeSessionBody(server.url, "sb-claude-changes-");
    const file = path.join(body["cwd"] as string, "notes.md");
    server.setScript((turn) =>
      turn.toolResult === undefined
        ? { tool: { tool: "write", path: file, content: "# Notes\n\nreview first\n" } }
        : { text: "Written." },
    );
    const id = (await s.http.post("/v1/sessions", { ...body, name: "claude-review" })).json.id as string;
    const page = await reused(s, { hash: `#/s/${id}` });
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "write the notes" });
    const card = page.locator(".permission[data-resolved=false]");
    await card.locator("[data-test=permission-diff]").waitFor({ timeout: 90_000 });
    const shown = await card.locator("[data-test=permission-diff]").innerText();
    expect(shown).toContain("notes.md");
    expect(shown).toContain("+review first");
    // The agent's own "allow once" option.
    const request = await waitFor(
      async () =>
        ((await s.http.get(`/v1/sessions/${id}/events`)).json.events as Array<Record<string, unknown>>).find(
          (e) => e.type === "permission.request",
        ),
      10_000,
      "permission.request",
    );
    const once = (request.options as Array<{ optionId: string; kind: string }>).find((o) => o.kind === "allow_once")!;
    await card.locator(`[data-option="${once.optionId}"]`).click();
    await page.waitForSelector(".run[data-status=done] [data-test=run-changes]", { timeout: 60_000 });
    expect(readFileSync(file, "utf8")).toBe("# Notes\n\nreview first\n");
    await page.click("[data-test=run-changes] > summary");
    const listed = page.locator("[data-test=run-changes] [data-test=changed-file]");
    await listed.first().waitFor();
    expect(await listed.getAttribute("data-path")).toBe("notes.md");
    expect(await listed.innerText()).toContain("+review first");
  }, 150_000);

  it("shows a worktree session's branch, dirty state and diff, and uploads a picked file into it", async () => {
    const s = shared();
    const repo = path.join(WORKTREE_ROOT, "app");
    gitRepo(repo, { "app.txt": "one\n" });
    const created = await s.http.post("/v1/sessions", { command: ["cat"], worktree: { repo, branch: "ui-branch" } });
    const { id, cwd } = created.json as { id: string; cwd: string };
    writeFileSync(path.join(cwd, "app.txt"), "one\ntwo\n");
    const page = await reused(s, { hash: `#/s/${id}`, take: false });
    const chip = page.locator("[data-test=worktree-chip]");
    await chip.locator("[data-test=worktree-dirty]").waitFor();
    expect(await chip.locator("[data-test=worktree-branch]").textContent()).toBe("ui-branch");
    await chip.click();
    const file = page.locator("[data-test=worktree-diff] [data-test=worktree-file]");
    expect(await file.getAttribute("data-path")).toBe("app.txt");
    expect(await file.innerText()).toContain("+two");
    await page.locator("[data-test=worktree-diff] .dialog-head button").click();
    await page.locator("[data-test=upload-input]").setInputFiles({
      name: "photo.bin",
      mimeType: "application/octet-stream",
      buffer: Buffer.from([0, 1, 2, 255]),
    });
    await waitFor(
      async () => {
        try {
          return readFileSync(path.join(cwd, "photo.bin")).equals(Buffer.from([0, 1, 2, 255])) || undefined;
        } catch {
          // Not there yet: the upload is on its way.
          return undefined;
        }
      },
      10_000,
      "the uploaded file",
    );
  });
});
