/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * A dropped or restarted gateway: resume without loss, the unreachable pill, what is kept and resent.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { serveInChild } from "../helpers/serve-child.js";
import { debugView, terminalText, waitForTerminal } from "./harness.js";
import {
  DESKTOP,
  SHORT_REQUEST_TIMEOUT,
  browser,
  createAgent,
  createShell,
  open,
  pollNow,
  reusedTab,
  runStatus,
  waitForRun,
  sharedGateway,
  useBrowser,
  waitForPrompt,
} from "./ui-helpers.js";

useBrowser();
// One gateway for the file; each test has a proxy of its own to cut (the gateway restart has a
// gateway of its own). Most tests load the one tab anew; those that route its WebSocket open a
// page of their own.
const gateway = sharedGateway();
const tab = reusedTab();

describe("web UI", () => {
  it("starts by itself once the gateway answers, when opened while it could not be reached (no Retry)", async () => {
    const s = await gateway();
    const page = await tab(s);
    // The gateway stops answering the start's first request: the page says so and when it tries again.
    await page.route("**/v1/whoami", (route) => route.abort("connectionrefused"));
    await page.reload();
    await page.waitForSelector("text=Cannot reach the gateway");
    expect(await page.textContent("[data-test=boot-retry]")).toMatch(/^Trying again in \d+ s/);
    await page.unroute("**/v1/whoami");
    await page.waitForSelector("[data-test=whoami]", { timeout: 10_000 });
  });

  it("says nothing of a resize a dropped connection cut off, and sends it again once back in control (a gateway restart showed 'Resize not sent')", async () => {
    const s = await gateway();
    const id = (await s.http.post("/v1/sessions", { command: ["cat"], pty: true, cols: 80, rows: 24, name: "resized" }))
      .json.id as string;
    const page = await tab(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    const sizeOf = async () => {
      const info = (await s.http.get(`/v1/sessions/${id}`)).json as { cols: number; rows: number };
      return `${info.cols}x${info.rows}`;
    };
    const pageSize = async () => {
      const view = await debugView(page);
      return `${view?.cols}x${view?.rows}`;
    };
    // Fitted to the window first.
    await waitFor(async () => (await sizeOf()) === (await pageSize()), 10_000, "the first fit to reach the PTY");
    const before = await sizeOf();
    // The page's frames stop reaching the gateway; the window shrinks; then the connection drops.
    s.proxy.blackhole("up");
    await page.setViewportSize({ width: 700, height: 500 });
    await waitFor(async () => (await pageSize()) !== before, 5_000, "the page to fit the smaller window");
    await page.waitForTimeout(300);
    expect(await sizeOf()).toBe(before);
    s.proxy.cut();
    s.proxy.heal();
    await waitFor(async () => (await sizeOf()) === (await pageSize()), 15_000, "the new size to reach the PTY");
    await page.waitForSelector(".terminal-view[data-control=mine]");
    expect((await page.locator(".toast").allTextContents()).filter((t) => t.includes("Resize"))).toEqual([]);
  });

  it("continues the stream after the connection is cut, without losing or duplicating a line", async () => {
    const s = await gateway();
    const LINES = 150;
    // The command stops after lines 50 and 100 until the test opens a gate (a file), so each
    // cut happens while the session is live, and what follows it can only arrive over a new
    // connection. Without the gates, a page that took a few seconds to open on a loaded
    // machine got the whole output, exit included, before the first cut, and rightly did not
    // reconnect for a session that had ended (CI once failed so).
    const gates = tempDir();
    const script = `i=0; while [ $i -lt ${LINES} ]; do i=$((i+1)); echo "line-$i"; sleep 0.02; if [ $i = 50 ] || [ $i = 100 ]; then while [ ! -e "$1/$i" ]; do sleep 0.02; done; fi; done`;
    const res = await s.http.post("/v1/sessions", {
      command: ["sh", "-c", script, "sh", gates],
      pty: true,
      cols: 80,
      rows: 24,
      name: "counter",
    });
    const id = res.json.id as string;
    const page = await tab(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("line-20"), 10_000, "line-20");
    expect(s.proxy.openSockets).toBeGreaterThan(0);
    s.proxy.cut();
    writeFileSync(join(gates, "50"), "");
    await waitForTerminal(page, (t) => t.includes("line-100"), 15_000, "line-100 after the first cut");
    // Cut again once the page is connected (on a loaded machine it may be between connections).
    await waitFor(() => s.proxy.openSockets > 0, 10_000, "the page to reconnect");
    s.proxy.cut();
    writeFileSync(join(gates, "100"), "");
    await page.waitForSelector("[data-test=exit-summary]", { timeout: 20_000 });
    const lines = (await terminalText(page)).split("\n").filter((l) => /^line-\d+$/.test(l));
    expect(lines).toEqual(Array.from({ length: LINES }, (_, i) => `line-${i + 1}`));
    const states = (await page.evaluate(() =>
      (window as unknown as { __switchboard: { connectionHistory(): string[] } }).__switchboard.connectionHistory(),
    )) as string[];
    expect(states.filter((state) => state === "reconnecting").length).toBeGreaterThanOrEqual(2);
  });

  // Exploratory test: when the gateway went away while the page followed nothing, the pill said
  // "Standby" for up to a list poll (~1.5 s), then "Gateway unreachable".
  it("says the gateway is unreachable when the connection drops while nothing is followed, without a Standby first", async () => {
    const s = await gateway();
    const id = await createShell(s.http, "pill-shell");
    const page = await tab(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".conn[data-state=open]");
    await page.evaluate(() => (location.hash = "#/"));
    await page.waitForSelector(".main .session-list, .main [data-test=new-session]");
    await page.evaluate(() => {
      const looks: string[] = [];
      (window as unknown as { looks: string[] }).looks = looks;
      const pill = document.querySelector(".conn")!;
      new MutationObserver(() => looks.push(pill.className)).observe(pill, {
        attributes: true,
        attributeFilter: ["class"],
      });
    });
    s.proxy.down = true;
    s.proxy.cut();
    const looks = () => page.evaluate(() => (window as unknown as { looks: string[] }).looks);
    await page.waitForSelector(".conn.conn-down", { timeout: 10_000 }).catch(async (error: Error) => {
      // What the pill went through, and says now: which of its states it stayed in decides this.
      const pill = await page.$eval(
        ".conn",
        (el) => `${el.className} "${el.textContent}" (${(el as HTMLElement).title})`,
      );
      throw new Error(`${error.message}\nthe pill's looks: ${JSON.stringify(await looks())}; now: ${pill}`);
    });
    expect((await looks()).filter((l) => l.includes("conn-idle"))).toEqual([]);
  });

  // Exploratory test: with the gateway gone, the list and the header went on showing "Running"
  // as if live; only the pill in the top bar said otherwise.
  it("dims the states it shows while it cannot hear from the gateway, and is live again after", async () => {
    const s = await gateway();
    const id = await createShell(s.http, "stale-shell");
    const page = await tab(s, { hash: `#/s/${id}` });
    const badge = ".view-head .badge[data-state=running]";
    const row = `.sidebar .row[data-session="${id}"] [data-state=running]`;
    await page.waitForSelector(badge);
    await page.waitForSelector(row);
    const opacity = (selector: string) => page.$eval(selector, (el) => getComputedStyle(el).opacity);
    expect(await page.$(".app.stale")).toBeNull();
    expect([await opacity(badge), await opacity(row)]).toEqual(["1", "1"]);

    s.proxy.down = true;
    s.proxy.cut();
    await page.waitForSelector(".app.stale", { timeout: 10_000 });
    expect([await opacity(badge), await opacity(row)]).toEqual(["0.5", "0.5"]);
    expect(await page.getAttribute(".conn", "class")).toContain("conn-stale");

    s.proxy.down = false;
    await pollNow(page);
    await page.waitForSelector(".conn[data-state=open]:not(.conn-stale)", { timeout: 20_000 });
    await page.waitForSelector(".app:not(.stale)");
    expect([await opacity(badge), await opacity(row)]).toEqual(["1", "1"]);
  });

  // Exploratory test (UI): with the gateway gone, Enter froze the prompt box for 10 s and then
  // said "no answer to prompt within 10000 ms (TIMEOUT)"; Abort did the same.
  it("keeps a prompt typed while the gateway cannot be reached, says so at once, and sends it once back", async () => {
    const s = await gateway();
    const id = await createAgent(s.http, "offline-bot");
    const page = await tab(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".agent-view[data-restored=true]");
    s.proxy.down = true;
    s.proxy.cut();
    await page.waitForSelector(".conn.conn-stale", { timeout: 10_000 });
    await page.fill(".prompt-input", "typed while offline");
    const started = Date.now();
    await page.keyboard.press("Enter");
    await page.waitForSelector(".toast:has-text('Not connected to the gateway')", { timeout: 2_000 });
    expect(Date.now() - started).toBeLessThan(2_000);
    // The toast leaves the prompt box, Send and the header's actions free (exploratory test: it
    // covered Send).
    const toast = (await page.locator(".toast").first().boundingBox())!;
    for (const selector of ["[data-test=send]", ".prompt-input", ".view-head .view-actions"]) {
      const box = (await page.locator(selector).boundingBox())!;
      const overlaps =
        toast.x < box.x + box.width &&
        box.x < toast.x + toast.width &&
        toast.y < box.y + box.height &&
        box.y < toast.y + toast.height;
      expect(overlaps, selector).toBe(false);
    }
    expect(await page.inputValue(".prompt-input")).toBe("typed while offline");
    expect(await page.isDisabled("[data-test=send]")).toBe(true);

    s.proxy.down = false;
    await pollNow(page);
    await page.waitForSelector(".conn[data-state=open]:not(.conn-stale)", { timeout: 20_000 });
    await page.focus(".prompt-input");
    await page.keyboard.press("Enter");
    await waitForRun(page, 0, "done", 10_000, "the prompt sent once back");
    expect((await runStatus(page, 0))?.text).toBe("typed while offline");
  });

  // Exploratory test: after a stall the page said "Prompt not sent: no answer … (TIMEOUT)"; the
  // prompt arrived once the link recovered, and the user's second Send ran it twice.
  it("says a prompt the gateway did not answer may still arrive, and empties the box when it does", async () => {
    const s = await gateway();
    const id = await createAgent(s.http, "stalled-bot");
    const page = await tab(s, { hash: `#/s/${id}`, storage: SHORT_REQUEST_TIMEOUT });
    await page.waitForSelector(".agent-view[data-restored=true]");
    s.proxy.blackhole("up");
    await page.fill(".prompt-input", "sent into a stall");
    await page.keyboard.press("Enter");
    const toast = page.locator(".toast:has-text('Prompt not confirmed')");
    await toast.waitFor({ timeout: 25_000 });
    expect(await toast.textContent()).toContain("did not answer in 2 s");
    expect(await toast.textContent()).toContain("check the conversation before sending again");
    expect(await page.locator(".toast:has-text('not sent')").count()).toBe(0);
    expect(await page.inputValue(".prompt-input")).toBe("sent into a stall");

    s.proxy.heal();
    await page.waitForSelector(".toast:has-text('has arrived')", { timeout: 20_000 });
    expect(await page.inputValue(".prompt-input")).toBe("");
    await waitForRun(page, 0, "done", 10_000, "the prompt's run");
    expect((await debugView(page))?.runs?.map((r) => r.prompt)).toEqual(["sent into a stall"]);
  }, 60_000);

  // Exploratory test: with the pill saying "Gateway unreachable" (the list poll failed while the
  // WebSocket still looked open), Send and Abort stayed enabled, and then timed out.
  it("disables Send and Abort while the pill says Gateway unreachable, and enables them once it is live", async () => {
    const s = await gateway();
    const id = await createAgent(s.http, "unreachable-bot");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission edit the file" });
    const page = await tab(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".agent-view[data-restored=true]");
    await page.fill(".prompt-input", "queued later");
    const abort = page.getByRole("button", { name: "Abort", exact: true });
    await abort.waitFor();
    expect([await page.isDisabled("[data-test=send]"), await abort.isDisabled()]).toEqual([false, false]);

    const list = /\/v1\/sessions(\?|$)/;
    await page.route(list, (route) => route.abort());
    await pollNow(page);
    await page.waitForSelector(".conn:has-text('Gateway unreachable')", { timeout: 10_000 });
    expect(await page.getAttribute(".conn", "data-state")).toBe("open");
    expect([await page.isDisabled("[data-test=send]"), await abort.isDisabled()]).toEqual([true, true]);

    await page.unroute(list);
    await pollNow(page);
    await page.waitForSelector(".conn:has-text('Live')", { timeout: 10_000 });
    expect([await page.isDisabled("[data-test=send]"), await abort.isDisabled()]).toEqual([false, false]);
  });

  it("says typed keys the gateway did not answer may still arrive, not that they were not sent", async () => {
    const s = await gateway();
    const id = await createShell(s.http, "stalled-shell");
    await waitForPrompt(s.http, id);
    const page = await tab(s, { hash: `#/s/${id}`, storage: SHORT_REQUEST_TIMEOUT });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.click(".term-host");
    s.proxy.blackhole("up");
    await page.keyboard.type("echo late-$((40+2))\n");
    const toast = page.locator(".toast:has-text('Input not confirmed')").first();
    await toast.waitFor({ timeout: 25_000 });
    expect(await toast.textContent()).toContain("did not answer in 2 s");
    expect(await page.locator(".toast:has-text('not sent')").count()).toBe(0);
    s.proxy.heal();
    await waitForTerminal(page, (t) => /^late-42$/m.test(t), 20_000, "the keys typed into the stall");
  }, 60_000);

  it("does not say control was lost when the session ended in a gateway restart, nor that taking control failed when the restart cut off its answer (exploratory test: a success toast with the raw id)", async () => {
    const dataDir = tempDir();
    const first = await serveInChild({ dataDir });
    const firstHttp = api(first.url);
    const id = await createShell(firstHttp, "restarted");
    await waitForPrompt(firstHttp, id);
    const proxy = await FaultProxy.start(first.url);
    const context = await browser.newContext({ viewport: DESKTOP, serviceWorkers: "block" });
    onTestFinished(async () => {
      await context.close();
      await proxy.close();
    });
    // The answer to Take control never reaches the page: the log's control event, published just
    // before it, shows the page in control, and the gateway dies before the answer gets out (a
    // race a loaded machine meets). The page holds control all the same, without a toast, and asks
    // for it again after the restart: refused, the session ended, and still no toast.
    const acquires: number[] = [];
    const answers: string[] = [];
    await context.routeWebSocket(/\/v1\/ws/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const frame = JSON.parse(String(message)) as { op: string; action?: string; ref: number };
        if (frame.op === "control" && frame.action === "acquire") acquires.push(frame.ref);
        server.send(message);
      });
      server.onMessage((message) => {
        const frame = JSON.parse(String(message)) as { op: string; ref?: number; code?: string };
        if (frame.ref === undefined || !acquires.includes(frame.ref)) return ws.send(message);
        if (frame.ref === acquires[0]) return;
        answers.push(frame.code ?? frame.op);
        ws.send(message);
      });
    });
    const page = await context.newPage();
    await page.goto(`${proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]");
    await open(page, `#/s/${id}`);
    await page.waitForSelector(".terminal-view[data-control=mine]");

    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    const second = await serveInChild({ dataDir });
    proxy.retarget(Number(new URL(second.url).port));
    await pollNow(page);
    await page.waitForSelector("[data-test=exit-summary]:has-text('Lost')", { timeout: 20_000 });
    // The lease ended with the session: the page holds none, and says nothing of losing it.
    await waitFor(async () => (await debugView(page))?.control !== "mine", 5_000, "the lease to be gone");
    const noToasts = async () => {
      const toasts = await page.locator(".toast").allTextContents();
      expect(toasts, `toasts: ${JSON.stringify(toasts)}`).toEqual([]);
    };
    await noToasts();
    await waitFor(() => answers.length > 0, 5_000, "the answer to taking control back");
    expect(answers).toEqual(["SESSION_NOT_RUNNING"]);
    await page.waitForTimeout(500);
    await noToasts();
  });

  it("shows Restoring… with progress while a 20 MB session restores, and sends the keys typed meanwhile once restored, all and in order (issue: a big history dropped the keys typed while it restored)", async () => {
    const s = await gateway();
    const typedFile = join(tempDir(), "typed");
    // 20 MB of output (the page's restore lasts as long as the test holds its frames, below; 20 MB
    // is more than twice the screen thread's feed bound), then a raw terminal whose program
    // writes every byte it is sent to a file.
    const BYTES = 20_000_000;
    const id = (
      await s.http.post("/v1/sessions", {
        command: [
          "sh",
          "-c",
          `yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c ${BYTES}; stty raw -echo; printf 'ready\\n'; exec cat > ${typedFile}`,
        ],
        pty: true,
        cols: 100,
        rows: 28,
        name: "big",
      })
    ).json.id as string;
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${id}/output?since=${BYTES}`)).text.includes("ready"),
      120_000,
      "20 MB of output",
    );
    // The page's frames from the gateway wait (after its hello) until the keys are typed: the
    // restore is under way for as long as the test needs, however fast the gateway is.
    const context = await browser.newContext({ viewport: DESKTOP, serviceWorkers: "block" });
    onTestFinished(() => context.close());
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const inputs: string[] = [];
    await context.routeWebSocket(/\/v1\/ws/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        if (typeof message === "string" && message.includes('"op":"input"')) inputs.push(message);
        server.send(message);
      });
      server.onMessage((message) => {
        if (typeof message === "string" && message.includes('"op":"hello"')) ws.send(message);
        else void released.then(() => ws.send(message));
      });
    });
    const page = await context.newPage();
    await page.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]");
    await page.evaluate((hash) => (location.hash = hash), `#/s/${id}`);
    const status = page.locator("[data-test=restoring]");
    // The PTY wrote \r\n for each \n: a little over 20 MB.
    const total = (await s.http.get(`/v1/sessions/${id}`)).json.outputBytes as number;
    expect(total).toBeGreaterThan(BYTES);
    await waitFor(
      async () => (await status.textContent()) === `Restoring… 0 B of ${(total / 1024 / 1024).toFixed(1)} MiB`,
    );
    await page.click(".term-host");
    const keys = `first line\nsecond ${"x".repeat(300)}\nthird\n`;
    await page.keyboard.type(keys);
    expect(await page.getAttribute(".terminal-view", "data-restored")).toBeNull();
    release();
    await page.waitForSelector(".terminal-view[data-restored=true]", { timeout: 30_000 });
    expect(await status.isHidden()).toBe(true);
    // Enter is a carriage return in a raw terminal.
    const expected = keys.replace(/\n/g, "\r");
    await waitFor(
      async () => existsSync(typedFile) && readFileSync(typedFile, "utf8") === expected,
      15_000,
      "every key typed during the restore, in order",
    );
    expect(await page.locator(".toast").allTextContents()).toEqual([]);
    // As one input, not one per key: 328 of them, each answered on its own, took over 10 s on a
    // loaded machine and raised "Input not confirmed" toasts.
    expect(inputs).toHaveLength(1);
  }, 240_000);
});
