/**
 * The web UI in a real browser: the agent composer and header at ACP's fidelity — the agent's
 * slash commands in the prompt box, its context usage and cost in the header and the list, and
 * images and files sent with a prompt as content blocks (docs/ui.md, "Composer"). The agent is
 * the scripted ACP agent, which says what it was sent ("blocks: image/image/png/…").
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import { debugView } from "./harness.js";
import { SCRIPTED_AGENT } from "./held-agent.js";
import { PHONE, SCREENSHOTS, runStatus, sharedPage, sharedStack, useBrowser } from "./ui-helpers.js";
import type { Stack } from "./ui-helpers.js";

useBrowser();
const shared = sharedStack({
  agents: {
    // Modes, a model and commands at its start; takes images and embedded files.
    rich: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT, "--state", "--image", "--embedded"] },
    // Takes text and links only.
    plain: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] },
  },
});
/** The desktop page of the tests that need no page of their own (see sharedPage). */
const reused = sharedPage();

const HOSTILE = `<img src=x onerror="window.__pwned=1">`;
const NOTES = "# Notes\n\nThe build fails on line 3.\n";
const COMMANDS = [
  { name: "review", description: "Review the diff", input: { hint: "what to review" } },
  { name: "init", description: "Write AGENTS.md" },
  { name: "compact", description: "Compact the context", input: { hint: "focus" } },
  { name: "xss", description: HOSTILE, input: { hint: HOSTILE } },
];

async function createSession(http: Stack["http"], agent: "rich" | "plain", name: string): Promise<string> {
  const res = await http.post("/v1/sessions", { kind: "agent", agent, name });
  expect(res.status).toBe(201);
  return res.json.id as string;
}

/**
 * Starts the agent with a first prompt and waits for the commands it offers at its start (they
 * come outside any turn, so they could otherwise land after a test's own).
 */
async function started(http: Stack["http"], id: string): Promise<void> {
  expect((await http.post(`/v1/sessions/${id}/prompt`, { text: "Which of the tests are slow?" })).status).toBe(202);
  await waitFor(
    async () => (await http.get(`/v1/sessions/${id}`)).json.agentState?.commands !== undefined,
    15_000,
    "the agent's opening commands",
  );
}

/** Has the agent send `updates` (session/update notifications) in a run, and waits for the run to end. */
async function agentSays(http: Stack["http"], id: string, updates: unknown[]): Promise<void> {
  const before = (await http.get(`/v1/sessions/${id}/events?types=chat.final`)).json.events.length as number;
  const res = await http.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "updates", updates }) });
  expect(res.status).toBe(202);
  await waitFor(
    async () => (await http.get(`/v1/sessions/${id}/events?types=chat.final`)).json.events.length > before,
    15_000,
    "the agent's updates",
  );
}

const usage = (used: number, amount: number) => ({
  sessionUpdate: "usage_update",
  used,
  size: 200_000,
  cost: { amount, currency: "USD" },
});

const menuItems = (page: Page): Promise<string[]> =>
  page.$$eval("[data-testid=slash-menu]:not([hidden]) [data-command]", (items) =>
    items.map((i) => (i as HTMLElement).dataset["command"] ?? ""),
  );

/** Pastes a PNG drawn in the page (`label` on a coloured square) into the prompt box; resolves with its base64. */
async function pasteImage(page: Page, label: string): Promise<string> {
  return page.evaluate(async (text) => {
    const canvas = document.createElement("canvas");
    canvas.width = 160;
    canvas.height = 100;
    const g = canvas.getContext("2d")!;
    g.fillStyle = "#6d8cff";
    g.fillRect(0, 0, 160, 100);
    g.fillStyle = "#fff";
    g.font = "bold 22px sans-serif";
    g.fillText(text, 14, 58);
    const blob = await new Promise<Blob>((resolve) => canvas.toBlob((b) => resolve(b!), "image/png"));
    const data = new DataTransfer();
    data.items.add(new File([blob], "screenshot.png", { type: "image/png" }));
    document
      .querySelector(".prompt-input")!
      .dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }, label);
}

describe("agent composer", () => {
  it("lists the agent's slash commands as they change, filters them and inserts the chosen one; a hostile description is text", async () => {
    const s = shared();
    const id = await createSession(s.http, "rich", "commands");
    const page = await reused(s, { hash: `#/s/${id}` });
    await started(s.http, id);
    // The commands arrive live, in a run of the open page (`agent.commands`).
    await agentSays(s.http, id, [{ sessionUpdate: "available_commands_update", availableCommands: COMMANDS }]);
    await page.waitForSelector(".run[data-status=done]");

    await page.focus(".prompt-input");
    await page.keyboard.type("/");
    await waitFor(async () => (await menuItems(page)).length === 4, 5_000, "the menu of four commands");
    expect(await menuItems(page)).toEqual(["review", "init", "compact", "xss"]);
    await page.screenshot({
      path: `${SCREENSHOTS}composer-slash.png`,
      clip: { x: 310, y: 470, width: 970, height: 330 },
    });
    const review = await page.textContent("[data-command=review]");
    expect(review).toContain("/review");
    expect(review).toContain("Review the diff");
    expect(review).toContain("what to review");

    // Filtered as the user types: names starting with the word first, then those containing it.
    await page.keyboard.type("i");
    expect(await menuItems(page)).toEqual(["init", "review"]);
    await page.keyboard.press("ArrowDown");
    expect(await page.getAttribute("[data-command=review]", "aria-selected")).toBe("true");
    await page.keyboard.press("ArrowDown");
    expect(await page.getAttribute("[data-command=init]", "aria-selected")).toBe("true");
    await page.keyboard.press("Backspace");
    await page.keyboard.type("co");
    expect(await menuItems(page)).toEqual(["compact"]);
    await page.keyboard.press("Tab");
    expect(await page.inputValue(".prompt-input")).toBe("/compact ");
    expect(await page.isHidden("[data-testid=slash-menu]")).toBe(true);
    // Its input hint stands where the argument goes, until something is typed there.
    expect(await page.textContent("[data-testid=command-hint]")).toBe("focus");
    expect(await page.isVisible("[data-testid=command-hint]")).toBe(true);
    await page.keyboard.type("on tests");
    expect(await page.isHidden("[data-testid=command-hint]")).toBe(true);

    // Escape closes the menu; Enter takes a command rather than sending the prompt.
    await page.fill(".prompt-input", "");
    await page.keyboard.type("/re");
    expect(await menuItems(page)).toEqual(["review"]);
    await page.keyboard.press("Escape");
    expect(await page.isHidden("[data-testid=slash-menu]")).toBe(true);
    await page.keyboard.type("v");
    await page.keyboard.press("Enter");
    expect(await page.inputValue(".prompt-input")).toBe("/review ");
    expect((await debugView(page))?.runs).toHaveLength(2);

    // What the agent wrote is shown as text: no element of it, no script run.
    await page.fill(".prompt-input", "");
    await page.keyboard.type("/xs");
    expect(await menuItems(page)).toEqual(["xss"]);
    expect(await page.textContent("[data-command=xss] .slash-desc")).toBe(HOSTILE);
    expect(await page.textContent("[data-command=xss] .slash-hint")).toBe(HOSTILE);
    expect(await page.$$("[data-testid=slash-menu] img")).toHaveLength(0);
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();

    // New commands replace the list while it is open.
    await page.fill(".prompt-input", "");
    await page.keyboard.type("/");
    await agentSays(s.http, id, [
      { sessionUpdate: "available_commands_update", availableCommands: [{ name: "plan", description: "Plan first" }] },
    ]);
    await waitFor(async () => (await menuItems(page)).join() === "plan", 5_000, "the new commands");
  });

  it("shows the context usage and cost in the header and on the list's row, updated live", async () => {
    const s = shared();
    const id = await createSession(s.http, "rich", "usage");
    const page = await reused(s, { hash: `#/s/${id}` });
    const meter = ".view-head [data-testid=usage-meter]";
    expect(await page.$(meter)).toBeNull();
    await agentSays(s.http, id, [usage(50_000, 0.42)]);
    await page.waitForSelector(meter);
    expect(await page.textContent(meter)).toBe("50k / 200k25%$0.42");
    expect(await page.getAttribute(meter, "title")).toBe("Context: 50,000 of 200,000 tokens (25%) · cost so far $0.42");

    await agentSays(s.http, id, [usage(182_000, 1.5)]);
    await page.waitForSelector(`${meter}.usage-full`);
    expect(await page.textContent(`${meter} .usage-long`)).toBe("182k / 200k");
    expect(await page.textContent(`${meter} .usage-cost`)).toBe("$1.50");

    // The list's row: compact, the share and the cost; it follows the next update too.
    await page.evaluate(() => (location.hash = "#/"));
    const row = `.main .row[data-session="${id}"] [data-testid=usage-meter]`;
    await page.waitForSelector(row);
    expect(await page.isVisible(`${row} .usage-short`)).toBe(true);
    expect(await page.isHidden(`${row} .usage-long`)).toBe(true);
    expect(await page.textContent(`${row} .usage-short`)).toBe("91%");
    await agentSays(s.http, id, [usage(20_000, 2)]);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .usage-short`)?.textContent === "10%", row, {
      timeout: 10_000,
    });
    expect(await page.textContent(`${row} .usage-cost`)).toBe("$2.00");
  });

  it("sends a pasted image and a picked file as content blocks, and shows them in the conversation", async () => {
    const s = shared();
    const id = await createSession(s.http, "rich", "pictures");
    const page = await reused(s, { hash: `#/s/${id}` });

    const pasted = await pasteImage(page, "hello, agent");
    await page.waitForSelector("[data-testid=attachment] img.attachment-thumb");
    await page.setInputFiles("[data-testid=attach-file-input]", {
      name: "notes.md",
      mimeType: "text/markdown",
      buffer: Buffer.from(NOTES),
    });
    await waitFor(async () => (await page.$$("[data-testid=attachment]")).length === 2, 5_000, "two chips");
    expect(await page.textContent(".attachments")).toContain("notes.md");
    // A chip is removed with its button; the file is dropped on the box instead.
    await page.click("[data-testid=attachment] >> nth=1 >> .attachment-remove");
    expect(await page.$$("[data-testid=attachment]")).toHaveLength(1);
    await page.evaluate((text) => {
      const data = new DataTransfer();
      data.items.add(new File([text], "notes.md", { type: "text/markdown" }));
      const form = document.querySelector(".composer-form")!;
      form.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
      form.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    }, NOTES);
    await waitFor(async () => (await page.$$("[data-testid=attachment]")).length === 2, 5_000, "the dropped file");
    await page.fill(".prompt-input", "what is in this picture?");
    await page.keyboard.press("Enter");

    await waitFor(async () => (await runStatus(page, 0))?.status === "done", 15_000, "the run");
    // The agent got the text, the image and the file as blocks (it answers with what it got).
    const answer = (await runStatus(page, 0))!.text;
    expect(answer).toBe(`blocks: text/-/24, image/image/png/${pasted.length}, resource/text/markdown/${NOTES.length}`);
    const queued = (await s.http.get(`/v1/sessions/${id}/events?types=run.queued`)).json.events[0];
    expect(queued.content[1]).toEqual({ type: "image", mimeType: "image/png", data: pasted });
    expect(queued.content[2].resource).toMatchObject({ uri: "file:///notes.md", mimeType: "text/markdown" });
    // The box is empty again, its chips gone.
    expect(await page.$$("[data-testid=attachment]")).toHaveLength(0);

    // The conversation shows the image (opened full size on a click) and the file by name and size.
    const thumb = ".msg-user .msg-image img";
    expect(await page.getAttribute(thumb, "src")).toBe(`data:image/png;base64,${pasted}`);
    expect(await page.textContent(".msg-user [data-testid=msg-file]")).toBe(`notes.md${NOTES.length} B`);
    await page.click(".msg-user .msg-image");
    await page.waitForSelector("[data-testid=image-viewer][open] img");
    await page.keyboard.press("Escape");
    await page.waitForSelector("[data-testid=image-viewer]", { state: "detached" });

    // The next prompt's files wait as chips under the conversation that shows the last one's.
    await pasteImage(page, "the next one");
    await page.waitForSelector("[data-testid=attachment]");
    await page.mouse.move(0, 0);
    await page.screenshot({
      path: `${SCREENSHOTS}composer-attachments.png`,
      clip: { x: 310, y: 124, width: 970, height: 676 },
    });
  });

  it("says why the gateway refused an image, and hides the pickers once the agent is known to take none", async () => {
    const s = shared();
    const id = await createSession(s.http, "plain", "text only");
    const page = await reused(s, { hash: `#/s/${id}` });
    // Not started: what it takes is not known yet, so the page lets the gateway check.
    expect(await page.isVisible("[data-testid=attach-image]")).toBe(true);
    // A file past PROMPT_BLOCK_MAX_BYTES is refused before it is read, and says the bound.
    await page.setInputFiles("[data-testid=attach-image-input]", {
      name: "huge.png",
      mimeType: "image/png",
      buffer: Buffer.alloc(6 * 1024 * 1024),
    });
    await page.waitForSelector("[data-testid=composer-error]:not([hidden])");
    expect(await page.textContent("[data-testid=composer-error]")).toBe(
      "huge.png is 6.0 MiB; one file may be at most 5.0 MiB",
    );
    expect(await page.$$("[data-testid=attachment]")).toHaveLength(0);
    await pasteImage(page, "refused");
    await page.waitForSelector("[data-testid=attachment]");
    await page.fill(".prompt-input", "and this?");
    await page.click("[data-test=send]");
    await page.waitForSelector("[data-testid=composer-error]:not([hidden])");
    expect(await page.textContent("[data-testid=composer-error]")).toContain(
      "an image, which the agent does not take in a prompt: it takes text and resource links only",
    );
    // Nothing was sent; the prompt and its image stay to be changed.
    expect((await s.http.get(`/v1/sessions/${id}/events?types=run.queued`)).json.events).toHaveLength(0);
    expect(await page.inputValue(".prompt-input")).toBe("and this?");
    expect(await page.$$("[data-testid=attachment]")).toHaveLength(1);
    // The check started the agent: the session now says what it takes, and the pickers go.
    await page.waitForSelector(".attach-buttons", { state: "hidden", timeout: 10_000 });
    const info = (await s.http.get(`/v1/sessions/${id}`)).json;
    expect(info.promptCapabilities).toEqual({ image: false, audio: false, embeddedContext: false });
  });

  it("works on a phone: tapped commands, a compact meter, the camera", async () => {
    const s = shared();
    const id = await createSession(s.http, "rich", "phone");
    await started(s.http, id);
    await agentSays(s.http, id, [
      { sessionUpdate: "available_commands_update", availableCommands: COMMANDS },
      usage(120_000, 0.9),
    ]);
    // An ordinary exchange at the bottom of the conversation (the scripted agent says it back).
    expect((await s.http.post(`/v1/sessions/${id}/prompt`, { text: "And which are flaky?" })).status).toBe(202);
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
    await waitFor(async () => (await runStatus(page, 2))?.status === "done", 15_000, "the third run");
    const meter = ".view-head [data-testid=usage-meter]";
    await page.waitForSelector(meter);
    expect(await page.isVisible(`${meter} .usage-short`)).toBe(true);
    expect(await page.isHidden(`${meter} .usage-long`)).toBe(true);
    expect(await page.textContent(`${meter} .usage-short`)).toBe("60%");
    // The meter stays on the screen.
    const box = (await page.locator(meter).boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(PHONE.width);

    // The camera input asks for the back camera; the image and file pickers beside it do not.
    expect(await page.getAttribute("[data-testid=attach-camera-input]", "capture")).toBe("environment");
    expect(await page.getAttribute("[data-testid=attach-camera-input]", "accept")).toBe("image/*");
    expect(await page.getAttribute("[data-testid=attach-image-input]", "capture")).toBeNull();

    await page.tap(".prompt-input");
    await page.fill(".prompt-input", "/");
    await page.waitForSelector("[data-testid=slash-menu]:not([hidden]) [data-command=init]");
    await page.screenshot({ path: `${SCREENSHOTS}composer-phone.png` });
    await page.tap("[data-command=init]");
    expect(await page.inputValue(".prompt-input")).toBe("/init ");
    expect(await page.isHidden("[data-testid=slash-menu]")).toBe(true);
    // Enter on a phone's keyboard starts a new line; Send sends the command.
    await page.tap("[data-test=send]");
    await waitFor(async () => (await runStatus(page, 3))?.status === "done", 15_000, "the command's run");
    const queued = (await s.http.get(`/v1/sessions/${id}/events?types=run.queued`)).json.events;
    expect(queued.at(-1).text).toBe("/init");
  });
});
