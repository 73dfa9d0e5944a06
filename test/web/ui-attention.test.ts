/**
 * The web UI in a real browser: a session that needs someone is marked on the board and counted
 * by the "Needs input" filter, looking at it clears that; the agent view's permission rules
 * editor previews rules over past requests and saves them.
 */
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import { open, sharedPage, sharedStack, useBrowser } from "./ui-helpers.js";

useBrowser();
const shared = sharedStack();
/** The desktop page of the tests that need no page of their own (see sharedPage). */
const reused = sharedPage();

describe("web UI: attention and permission rules", () => {
  it("marks a session that rang its bell as needing you, filters it, and clears the mark once looked at", async () => {
    const s = shared();
    const created = await s.http.post("/v1/sessions", {
      command: ["sh", "-c", "printf 'ding\\a\\n'; sleep 60"],
      pty: true,
      name: "ringer",
    });
    const id = created.json.id as string;
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${id}`)).json.attention?.reason === "bell",
      5_000,
      "the bell",
    );
    const page = await reused(s);
    const mark = `.main .row[data-session="${id}"] [data-test=needs-you]`;
    await page.waitForSelector(mark);
    expect(await page.getAttribute(mark, "data-reason")).toBe("bell");
    await page.click(".main .chip:has-text('Needs input')");
    await page.waitForSelector(`.main .row[data-session="${id}"]`);
    // Looking at it (the page visible and focused) ends its attention, for every viewer.
    await page.bringToFront();
    await open(page, `#/s/${id}`, { take: false });
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.attention === undefined, 5_000, "seen");
  });

  it("previews rules over the agent's past requests and saves them for the session", async () => {
    const s = shared();
    const created = await s.http.post("/v1/sessions", { kind: "agent", agent: "echo", name: "asker" });
    const id = created.json.id as string;
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission edit it" });
    const request = await waitFor(
      async () =>
        (
          (await s.http.get(`/v1/sessions/${id}/events?types=permission.request`)).json.events as Array<{
            requestId: string;
          }>
        )[0],
      10_000,
      "the request",
    );
    await s.http.post(`/v1/sessions/${id}/permission`, { requestId: request.requestId, optionId: "allow" });
    const page = await reused(s, { hash: `#/s/${id}` });
    await page.click("[data-test=policy-editor] summary");
    await page.waitForSelector("[data-test=policy-status]:has-text('No rules')");
    await page.click("[data-test=policy-editor] button:has-text('Add rule')");
    const rule = "[data-test=policy-rule]";
    await page.fill(`${rule} input[aria-label=name]`, "edits");
    await page.selectOption(`${rule} select[aria-label=kind]`, "edit");
    await page.selectOption(`${rule} select[aria-label=answer]`, "allow_once");
    await page.click("[data-test=policy-preview-button]");
    const row = await page.waitForSelector("[data-test=policy-preview-row]");
    expect(await row.getAttribute("data-rule")).toBe("edits");
    expect(await row.innerText()).toContain("allow_once");
    await page.click("[data-test=policy-save]");
    await page.waitForSelector("[data-test=policy-status]:has-text('Saved')");
    const saved = await s.http.get(`/v1/sessions/${id}/permission-policy`);
    expect(saved.json).toMatchObject({
      source: "session",
      policy: { rules: [{ name: "edits", kind: "edit", answer: "allow_once" }] },
    });
  });
});
