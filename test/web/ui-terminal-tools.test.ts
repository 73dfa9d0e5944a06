/**
 * The terminal header's "Tools" menu in a real browser (set-up in ./ui-helpers.ts): downloads
 * of the output and the recording, find, and fit to width on a phone; and the admin's line
 * with the data directory's size under the session list.
 */
import { readFileSync } from "node:fs";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { debugView, waitForTerminal } from "./harness.js";
import { PHONE, VIEWER_TOKEN, sharedPage, sharedStack, stack, useBrowser } from "./ui-helpers.js";
import type { Stack } from "./ui-helpers.js";

useBrowser();

// One gateway for the terminal tools, whose tests each open a session of their own; the data
// directory's test counts the ended sessions, so it has a gateway to itself.
const shared = sharedStack();
/** The desktop page of the tests that need no page of their own (see sharedPage). */
const reused = sharedPage();

/** A PTY session that runs `script` and has ended (so no page takes control and resizes it). */
async function endedSession(s: Stack, script: string, size = { cols: 100, rows: 28 }): Promise<string> {
  const res = await s.http.post("/v1/sessions", { command: ["sh", "-c", script], pty: true, ...size });
  expect(res.status).toBe(201);
  const id = res.json.id as string;
  await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.state === "exited", 10_000, "the exit");
  return id;
}

/** The bytes of the file the page downloads when `test` is chosen in the Tools menu, and its name. */
async function download(page: Page, test: string): Promise<{ bytes: Buffer; name: string }> {
  await page.click("[data-test=terminal-tools]");
  const [file] = await Promise.all([page.waitForEvent("download"), page.click(`[data-test=${test}]`)]);
  return { bytes: readFileSync((await file.path())!), name: file.suggestedFilename() };
}

async function bytesOf(s: Stack, path: string): Promise<Buffer> {
  const res = await fetch(`${s.gateway.url}${path}`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe("terminal tools", () => {
  it("downloads the output as GET /output has it, as text without escapes, and as an asciicast", async () => {
    const s = shared();
    const id = await endedSession(s, "printf '\\033[1;31mred\\033[0m caf\\303\\251\\r\\n'; seq 1 2000");
    const page = await reused(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("2000"), 10_000, "the output");

    const raw = await download(page, "tool-download-raw");
    expect(raw.name).toBe(`${id}.out`);
    expect(raw.bytes.equals(await bytesOf(s, `/v1/sessions/${id}/output`))).toBe(true);
    expect(raw.bytes.includes("\x1b[1;31m")).toBe(true);

    const text = await download(page, "tool-download-text");
    expect(text.name).toBe(`${id}.txt`);
    expect(text.bytes.toString("utf8").startsWith("red café\n1\n2\n")).toBe(true);
    expect(text.bytes.includes("\x1b")).toBe(false);

    const cast = await download(page, "tool-download-cast");
    expect(cast.name).toBe(`${id}.cast`);
    const [header, ...events] = cast.bytes.toString("utf8").trimEnd().split("\n");
    expect(JSON.parse(header!)).toMatchObject({ version: 2, width: 100, height: 28 });
    const played = events.map((l) => JSON.parse(l) as [number, string, string]).filter((e) => e[1] === "o");
    expect(played.map((e) => e[2]).join("")).toBe(raw.bytes.toString("utf8"));
  });

  it("finds a word and selects it where it shows; says when there is none", async () => {
    const s = shared();
    const id = await endedSession(s, "printf '\\033[2J\\033[5;11Hthe needle is here\\r\\n'");
    const page = await reused(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("needle"), 10_000, "the output");
    await page.click("[data-test=terminal-tools]");
    await page.click("[data-test=tool-find]");
    await page.fill("[data-test=find-input]", "needle");
    await page.waitForSelector("[data-test=find-bar][data-found=true]");
    // xterm draws the selection on its next frame, which a loaded machine can delay past the status.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll(".xterm-selection div")].some((d) => {
          const r = d.getBoundingClientRect();
          return r.width > 0 && r.height > 0;
        }),
      null,
      { timeout: 5000 },
    );
    // The selection xterm draws covers the word's cells: row 4, columns 14-19.
    const box = await page.evaluate(() => {
      const screen = document.querySelector(".xterm-screen")!.getBoundingClientRect();
      const marks = [...document.querySelectorAll(".xterm-selection div")]
        .map((d) => d.getBoundingClientRect())
        .filter((r) => r.width > 0 && r.height > 0);
      return { screen: { x: screen.x, y: screen.y, width: screen.width, height: screen.height }, marks };
    });
    const cell = { width: box.screen.width / 100, height: box.screen.height / 28 };
    expect(box.marks).toHaveLength(1);
    const mark = box.marks[0]!;
    expect(Math.round((mark.x - box.screen.x) / cell.width)).toBe(14);
    expect(Math.round(mark.width / cell.width)).toBe(6);
    expect(Math.round((mark.y - box.screen.y) / cell.height)).toBe(4);

    await page.fill("[data-test=find-input]", "haystack");
    await page.waitForSelector("[data-test=find-bar][data-found=false]");
    expect(await page.textContent("[data-test=find-status]")).toBe("Not found");
  });

  it("fits a 134-column session into a 390 px wide phone screen", async () => {
    const s = shared();
    const line = "x".repeat(133) + "|";
    const id = await endedSession(s, `for i in 1 2 3; do printf '%s\\r\\n' '${line}'; done`, { cols: 134, rows: 40 });
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
    await waitForTerminal(page, (t) => t.includes("|"), 10_000, "the output");
    const screenWidth = () =>
      page.evaluate(() => document.querySelector(".xterm-screen")!.getBoundingClientRect().width);
    expect(await screenWidth()).toBeGreaterThan(PHONE.width);

    await page.click("[data-test=terminal-tools]");
    await page.click("[data-test=tool-fit]");
    await waitFor(async () => (await screenWidth()) <= PHONE.width, 5_000, "the screen to fit");
    const fitted = await page.evaluate(() => {
      const screen = document.querySelector(".xterm-screen")!.getBoundingClientRect();
      return { right: screen.right, pageWidth: document.documentElement.scrollWidth };
    });
    expect(fitted.right).toBeLessThanOrEqual(PHONE.width);
    // Nothing scrolls sideways, and the terminal still has all 134 columns.
    expect(fitted.pageWidth).toBeLessThanOrEqual(PHONE.width);
    expect((await debugView(page))?.cols).toBe(134);
    expect(await page.getAttribute("[data-test=tool-fit]", "aria-pressed")).toBe("true");

    // Upright, 134 columns leave a 4.5 px font: the page says what a phone user can do about it.
    const fitFont = async () => Number(await page.getAttribute("[data-fit-width=true]", "data-fit-font"));
    await waitFor(async () => (await fitFont()) > 0, 5_000, "the fitted font");
    expect(await fitFont()).toBe(4.5);
    expect(await page.textContent(".toast")).toBe(
      "The text is 4.5 px to fit 134 columns: turn the phone sideways to read it larger, or zoom in with two fingers",
    );
    // Zooming in with two fingers is not turned off for the page.
    expect(await page.getAttribute("meta[name=viewport]", "content")).not.toMatch(/user-scalable=no|maximum-scale=1\b/);
    // Sideways, the same 134 columns fit at a readable size.
    await page.setViewportSize({ width: PHONE.height, height: PHONE.width });
    await waitFor(async () => (await fitFont()) >= 6, 5_000, "a readable font sideways");
    expect(await fitFont()).toBeGreaterThanOrEqual(9);
    expect(await screenWidth()).toBeLessThanOrEqual(PHONE.height);
  });
});

describe("data directory size", () => {
  it("shows admins what the data directory takes and the ended-session rule; viewers see nothing", async () => {
    const s = await stack({
      auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
      retention: { endedSessions: { maxAgeMs: 7 * 86_400_000, maxTotalBytes: null } },
    });
    await endedSession(s, "seq 1 1000");
    const page = await s.page();
    const line = await page.waitForSelector("[data-test=disk-usage][data-bytes]");
    const disk = (await s.http.get("/v1/admin/disk")).json;
    expect(Number(await line.getAttribute("data-bytes"))).toBeGreaterThan(0);
    expect(await line.textContent()).toMatch(
      new RegExp(
        `^Data directory: [\\d.]+ (B|KiB|MiB) · ended sessions: 1 \\([\\d.]+ KiB\\), kept 7 days, with no size cap$`,
      ),
    );
    expect(disk.endedSessions.count).toBe(1);
    const viewer = await s.page({ token: VIEWER_TOKEN });
    // The line is made with the list (and filled later): once the list shows rows, it would be there.
    await viewer.waitForSelector(".list-full .rows a");
    expect(await viewer.$("[data-test=disk-usage]")).toBeNull();
  });
});
