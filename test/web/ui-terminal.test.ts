/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * Terminal and pipe sessions: output, typing, replay, terminal queries, keyboard and screen reader.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { connect } from "../../src/client/node.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";
import { foregroundJob } from "../sessions/process-helpers.js";
import { debugView, terminalText, waitForTerminal } from "./harness.js";
import {
  SCREENSHOTS,
  createAgent,
  createShell,
  open,
  sharedPage,
  sharedStack,
  useBrowser,
  waitForPrompt,
} from "./ui-helpers.js";

useBrowser();

// One gateway for the file: each test opens sessions of its own and leaves the proxy alone.
const fixture = new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url).pathname;
const shared = sharedStack({ agents: { scripted: { adapter: "acp", command: [process.execPath, fixture] } } });
/** The desktop page of the tests that need no page of their own (see sharedPage). */
const reused = sharedPage();

describe("web UI", () => {
  it("creates a PTY session, shows its output, echoes typing and restores the same screen on reload", async () => {
    const s = shared();
    const page = await reused(s);
    await page.click(".main [data-test=new-session]");
    await page.fill("input[name=command]", "bash --noprofile --norc -i");
    await page.fill("input[name=name]", "scratch");
    await page.click("[data-test=create]");
    await page.waitForSelector(".terminal-view[data-control=mine][data-restored=true]");
    const id = (await debugView(page))!.session;
    await page.click(".term-host");
    await page.keyboard.type("echo hello-$((6*7))\n");
    const before = await waitForTerminal(page, (t) => /^hello-42$/m.test(t), 10_000, "the echo output");
    expect(before).toContain("echo hello-$((6*7))"); // the PTY echoed what was typed

    // The gateway saw input from this page, as admin.
    const inputs = await s.http.get(`/v1/sessions/${id}/events?types=input`);
    expect(inputs.json.events.length).toBeGreaterThan(0);
    expect(inputs.json.events[0].by.name).toBe("admin");

    await page.reload();
    await page.waitForSelector(".terminal-view[data-restored=true]");
    const after = await waitForTerminal(page, (t) => t === before, 5_000, "the restored screen");
    expect(after).toBe(before);
  });

  // Regression (exploratory testing): opening the page replayed the queries an earlier program
  // sent (cursor position, device attributes, colours); xterm answered them again and the page
  // sent the answers to the shell as keys.
  it("sends nothing when it replays the history's terminal queries, and answers a program asking now", async () => {
    const s = shared();
    const id = await createShell(s.http, "queries");
    await waitForPrompt(s.http, id);
    await s.http.post(`/v1/sessions/${id}/input`, {
      data: "printf '\\033[6n\\033[c\\033[>c\\033]11;?\\007\\033[?12$p'; echo ASKED\r",
    });
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${id}/output`)).text.includes("ASKED\r\n"),
      10_000,
      "ASKED",
    );
    const inputs = async () =>
      (await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events as { bytes: number }[];
    const before = (await inputs()).length;
    const page = await reused(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine][data-restored=true]");
    await waitForTerminal(page, (t) => /^ASKED$/m.test(t), 10_000, "the replayed output");
    // A program asking now gets its answer: the cursor's position.
    await page.click(".term-host");
    const command = "printf '\\033[6n'; IFS= read -rsdR pos; echo \"at:${pos#*[}\"";
    await page.keyboard.type(`${command}\n`);
    const text = await waitForTerminal(page, (t) => /^at:\d+;\d+$/m.test(t), 10_000, "the answered position");
    // The page sent the line typed (Enter is \r) and the answer, ESC [ row ; col R, and nothing
    // else: an answer to the replay would have gone out before the typing.
    const position = /^at:(\d+;\d+)$/m.exec(text)![1]!;
    const sent = (await inputs()).slice(before).reduce((sum, e) => sum + e.bytes, 0);
    expect(sent).toBe(command.length + 1 + `\x1b[${position}R`.length);
  });

  it("shows a terminal with colours and its exit code at the end", async () => {
    const s = shared();
    const cwd = tempDir();
    const script = join(cwd, "build.sh");
    writeFileSync(
      script,
      [
        "printf '\\033[1;34m==>\\033[0m Building \\033[1mswitchboard\\033[0m\\n'",
        "for s in protocol core log sessions agents server client web; do",
        "  printf '  \\033[32m✔\\033[0m %-10s \\033[2m%4sms\\033[0m\\n' $s $(( ${#s} * 37 + 12 ))",
        "done",
        "printf '\\033[33m⚠\\033[0m  web/dist/app.js is \\033[1m608 KiB\\033[0m (169 KiB gzip)\\n'",
        "printf '\\033[1;32m✔ done\\033[0m in 2.41s\\n'",
        "",
      ].join("\n"),
    );
    chmodSync(script, 0o755);
    const id = await createShell(s.http, "build", { cwd });
    await waitForPrompt(s.http, id);
    await s.http.post(`/v1/sessions/${id}/input`, { data: "./build.sh && ls --color=always -l /usr | head -6\r" });
    const page = await reused(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("done in 2.41s") && /\/app\$ $/m.test(t), 10_000, "the build output");
    await page.waitForTimeout(200);
    await page.screenshot({ path: `${SCREENSHOTS}terminal.png` });

    await page.keyboard.type("exit 3\n");
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.textContent("[data-test=exit-summary]")).toContain("Exited with code 3");
    expect((await debugView(page))?.ended).toBe("exit");
    await page.waitForSelector(".view-head [data-state=failed]");
  });

  it("offers ^C only while a terminal runs, never for a stream (audit: ^C gave WRONG_SESSION_KIND and ran nothing)", async () => {
    const s = shared();
    const interrupt = "button[title='Interrupt (Ctrl-C)']";
    const stream = (await s.http.post("/v1/sessions", { kind: "stream", name: "ci-log" })).json.id as string;
    const done = (await s.http.post("/v1/sessions", { command: ["true"], name: "done" })).json.id as string;
    const shell = await createShell(s.http, "interruptible");
    await waitForPrompt(s.http, shell);

    const page = await reused(s, { hash: `#/s/${stream}` });
    await page.waitForSelector(".terminal-view[data-control=stream]");
    expect(await page.locator(interrupt).count()).toBe(0);
    await open(page, `#/s/${done}`);
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.isHidden(interrupt)).toBe(true);

    await open(page, `#/s/${shell}`);
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.click(".term-host");
    await page.keyboard.type("sleep 300\n");
    // ^C once the job holds the terminal. Sent while bash is still starting it, the interrupt
    // reaches bash instead, and sleep then runs on with the next line as its input (with ^C right
    // after the line, 44 tries in 100 in a PTY session; the click only usually came late enough).
    const { pid } = (await s.http.get(`/v1/sessions/${shell}`)).json as { pid: number };
    await waitFor(() => foregroundJob(pid, "sleep 300"), 10_000, "sleep in the foreground");
    await page.click(interrupt);
    // The click left the focus in the terminal (audit: typing after ^C went nowhere on desktop).
    await page.keyboard.type("echo interrupted-$((40+2))\n");
    await waitForTerminal(page, (t) => /^interrupted-42$/m.test(t), 5_000, "the shell back after ^C");
    await page.keyboard.type("exit\n");
    await page.waitForSelector("[data-test=exit-summary]");
    await page.waitForSelector(interrupt, { state: "hidden", timeout: 5_000 });
  });

  it("lets a screen reader read the terminal once its mode is turned on, and keeps it on (exploratory test: the output was a canvas, silent)", async () => {
    const s = shared();
    const id = await createShell(s.http, "read-aloud");
    await waitForPrompt(s.http, id);
    await s.http.post(`/v1/sessions/${id}/input`, { data: "echo spoken-$((40+2))\r" });
    const page = await s.page({ hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => /^spoken-42$/m.test(t), 5_000, "the output");
    const toggle = page.getByRole("button", { name: "Screen reader mode" });
    expect(await toggle.getAttribute("aria-pressed")).toBe("false");
    // Off by default (it costs): no accessible copy of the rows.
    expect(await page.locator(".xterm-accessibility").count()).toBe(0);
    // Shown only while focused, and reached from the keyboard.
    expect((await toggle.boundingBox())!.width).toBeLessThanOrEqual(1);
    await toggle.focus();
    expect((await toggle.boundingBox())!.width).toBeGreaterThan(1);
    await page.keyboard.press("Enter");
    expect(await toggle.getAttribute("aria-pressed")).toBe("true");
    await waitFor(async () => (await page.locator(".xterm-accessibility-tree").textContent())?.includes("spoken-42"));

    await page.reload();
    await page.waitForSelector(".terminal-view[data-restored=true]");
    expect(await page.getByRole("button", { name: "Screen reader mode" }).getAttribute("aria-pressed")).toBe("true");
    await waitFor(async () => (await page.locator(".xterm-accessibility-tree").textContent())?.includes("spoken-42"));
  });

  it("comes back after a long flood: a pipe's output to its end, and a PTY's full-screen program from the gateway's screen", async () => {
    const s = shared();
    // 10 MB of short lines, over 2 million (xterm takes about a second per million lines; a pipe's
    // page shows every byte, replayed in frames of REPLAY_FRAME_BYTES), then a program that
    // switched to the alternate screen long before its last 8 MB.
    const flood = (
      await s.http.post("/v1/sessions", {
        command: ["sh", "-c", "yes line | head -c 10000000; echo the-end"],
        name: "flood",
      })
    ).json.id as string;
    const tui = (
      await s.http.post("/v1/sessions", {
        command: [
          "sh",
          "-c",
          "printf 'before\\n\\033[?1049h\\033[?25l'; yes row | head -c 8000000; printf 'drawn\\n'; sleep 300",
        ],
        pty: true,
        cols: 80,
        rows: 24,
        name: "tui",
      })
    ).json.id as string;
    await waitFor(async () => (await s.http.get(`/v1/sessions/${flood}`)).json.state === "exited", 30_000, "flood end");
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${tui}/output?since=8000000`)).text.includes("drawn"),
      30_000,
      "tui output",
    );

    const page = await reused(s, { hash: `#/s/${flood}` });
    const view = await debugView(page);
    expect(view?.text).toMatch(/line\n(line\n)*the-end/);
    expect(view?.screen).toBe("normal");

    await open(page, `#/s/${tui}`);
    const tuiView = await debugView(page);
    expect(tuiView?.screen).toBe("alternate");
    expect(tuiView?.text).toContain("drawn");
    expect(tuiView?.text).not.toContain("not shown");
    await s.http.del(`/v1/sessions/${tui}`);
  });

  it("says when it shows a PTY at another size than its window, and fits the PTY to the window on Fit", async () => {
    const s = shared();
    const id = (
      await s.http.post("/v1/sessions", {
        command: ["sh", "-c", "printf 'ready\\n'; sleep 300"],
        pty: true,
        cols: 200,
        rows: 60,
        name: "wide",
      })
    ).json.id as string;
    const other = await connect({ url: s.gateway.url, token: TEST_TOKEN });
    onTestFinished(() => other.close());
    await other.control(id, "acquire");
    const page = await reused(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=other]");
    const note = page.locator(".size-note");
    await note.waitFor({ state: "visible" });
    expect(await note.textContent()).toMatch(/^showing 200x60 at \d+x\d+$/);
    const [, cols, rows] = /at (\d+)x(\d+)/.exec((await note.textContent())!)!;
    await other.control(id, "release");
    // Free control: Fit (or the page taking control, which fits too) gives the PTY the window's size.
    if (await page.locator("button:text-is('Fit')").isVisible()) await page.click("button:text-is('Fit')");
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.cols === Number(cols), 10_000, "fitted");
    expect((await s.http.get(`/v1/sessions/${id}`)).json.rows).toBe(Number(rows));
    await note.waitFor({ state: "hidden" });
    await s.http.del(`/v1/sessions/${id}`);
  });

  it("sends lines to a pipe session and ends its input with EOF, so a filter finishes", async () => {
    const s = shared();
    const id = (await s.http.post("/v1/sessions", { command: ["sort"], name: "sorter" })).json.id as string;
    const page = await reused(s, { hash: `#/s/${id}` });
    for (const fruit of ["pear", "apple"]) {
      await page.fill(".line-field", fruit);
      await page.press(".line-field", "Enter");
    }
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events.length === 2,
      10_000,
      "both lines",
    );
    // Ctrl-D in the empty box, as in a terminal (the EOF button does the same).
    await page.press(".line-field", "Control+d");
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.textContent("[data-test=exit-summary]")).toContain("Exited with code 0");
    await waitForTerminal(page, (t) => t.includes("apple\npear"), 10_000, "the sorted lines");
    const inputs = (await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events as Array<{ eof?: boolean }>;
    expect(inputs.map((e) => e.eof ?? false)).toEqual([false, false, true]);
  });

  it("shows a pipe session's stderr in red, apart from its stdout", async () => {
    const s = shared();
    const command = ["sh", "-c", "echo plain-out; echo loud-err >&2; echo plain-after"];
    const id = (await s.http.post("/v1/sessions", { command, name: "two-streams" })).json.id as string;
    const page = await reused(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("plain-after"), 10_000, "all three lines");
    // The DOM renderer gives each run of cells a span; a red foreground is the class xterm-fg-1.
    const classes = await page.evaluate(() => {
      const spans = [...document.querySelectorAll(".xterm-rows span")];
      const of = (text: string) => spans.find((e) => e.textContent?.includes(text))?.className ?? "";
      return { out: of("plain-out"), err: of("loud-err"), after: of("plain-after") };
    });
    expect(classes.err).toContain("xterm-fg-1");
    expect(classes.out).not.toContain("xterm-fg-1");
    expect(classes.after).not.toContain("xterm-fg-1");
  });

  it("stops offering to type or prompt once a running session is removed while its page is open (its end comes first)", async () => {
    const s = shared();
    const agent = await createAgent(s.http, "to-be-removed");
    const page = await reused(s, { hash: `#/s/${agent}` });
    await page.waitForSelector(".agent-view[data-restored=true]");
    expect(await page.isEnabled(".prompt-input")).toBe(true);
    expect((await s.http.del(`/v1/sessions/${agent}?purge=true&force=true`)).status).toBe(200);
    await page.waitForSelector(".prompt-input[placeholder='This session has ended.']", { timeout: 10_000 });
    expect(await page.isEnabled(".prompt-input")).toBe(false);

    const cat = (await s.http.post("/v1/sessions", { command: ["cat"], name: "also-removed" })).json.id as string;
    await open(page, `#/s/${cat}`);
    await page.waitForSelector(".terminal-view[data-control=mine]");
    expect(await page.isVisible(".line-field")).toBe(true);
    expect((await s.http.del(`/v1/sessions/${cat}?purge=true&force=true`)).status).toBe(200);
    await page.waitForSelector(".terminal-view:not([data-control=mine])", { timeout: 10_000 });
    expect(await page.isVisible(".line-field")).toBe(false);
  });

  it("puts the focus in a pipe session's line box, so typing reaches stdin (exploratory test: it went to the terminal, which takes no keys)", async () => {
    const s = shared();
    const id = (await s.http.post("/v1/sessions", { command: ["cat"], name: "echoer" })).json.id as string;
    const page = await reused(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    expect(await page.evaluate(() => document.activeElement?.className)).toBe("line-field");
    await page.keyboard.type("typed-at-once\n");
    await waitForTerminal(page, (t) => /^typed-at-once$/m.test(t), 5_000, "the line cat echoed");
  });

  it("links an agent's tool call to its child terminal, and the terminal back to its agent", async () => {
    const s = shared();
    const created = await s.http.post("/v1/sessions", { kind: "agent", agent: "scripted", name: "ci-agent" });
    const id = created.json.id as string;
    const page = await reused(s, { hash: `#/s/${id}` });
    await s.http.post(`/v1/sessions/${id}/prompt`, {
      text: JSON.stringify({ op: "terminal", command: "bash", args: ["-c", "echo from-the-child; exit 4"] }),
    });
    await page.waitForSelector(".tool [data-test=tool-terminal]", { timeout: 20_000 });
    await page.waitForSelector("[data-test=child-link]");
    await page.click(".tool [data-test=tool-terminal]");
    await page.waitForSelector(".terminal-view[data-restored=true]");
    await waitForTerminal(page, (t) => t.includes("from-the-child"), 10_000, "the child's output");
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.textContent("[data-test=exit-summary]")).toContain("Exited with code 4");
    expect(await page.textContent("[data-test=parent-link]")).toContain("started by ci-agent");
    await page.click("[data-test=parent-link]");
    await page.waitForSelector(`.agent-view[data-session="${id}"][data-restored=true]`);
  });

  it("lets a keyboard user leave the terminal with Escape then Tab, while Tab alone still completes (exploratory test: the terminal was a keyboard trap)", async () => {
    const s = shared();
    const cwd = tempDir();
    writeFileSync(join(cwd, "tab-completed-42.txt"), "");
    const id = await createShell(s.http, "keyboard-only", { cwd });
    await waitForPrompt(s.http, id);
    const page = await reused(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    const inTerminal = (): Promise<boolean> =>
      page.evaluate(() => document.activeElement?.classList.contains("xterm-helper-textarea") === true);
    await page.click(".term-host");
    await page.keyboard.type("echo tab-com");
    await page.keyboard.press("Tab");
    await waitForTerminal(page, (t) => /tab-completed-42\.txt/.test(t), 5_000, "the completed name");
    expect(await inTerminal()).toBe(true);
    await page.keyboard.press("Escape");
    await page.keyboard.press("Tab");
    expect(await inTerminal()).toBe(false);
    await page.click(".term-host");
    expect(await inTerminal()).toBe(true);
    await page.keyboard.press("Escape");
    await page.keyboard.press("Shift+Tab");
    expect(await inTerminal()).toBe(false);
    // The shell got the typing, the first Tab and both Escapes, and neither Tab that followed an Escape.
    const bytes = async (): Promise<number> =>
      ((await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events as { bytes: number }[]).reduce(
        (sum, e) => sum + e.bytes,
        0,
      );
    await waitFor(async () => (await bytes()) >= 15, 5_000, "the input to be logged");
    await page.waitForTimeout(200);
    expect(await bytes()).toBe("echo tab-com".length + 1 + 2);
  });

  it("copies the selected text on Ctrl+C instead of interrupting the program (exploratory test: copying an error killed the build)", async () => {
    const s = shared();
    // A program that says when it is interrupted, and otherwise runs on.
    const res = await s.http.post("/v1/sessions", {
      command: [
        "sh",
        "-c",
        "trap 'echo INTERRUPTED; exit 130' INT; echo 'error: copy me please'; while :; do sleep 0.1; done",
      ],
      pty: true,
      name: "copy",
      cols: 100,
      rows: 28,
    });
    const id = res.json.id as string;
    const page = await reused(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (text) => text.includes("copy me please"));
    await page.waitForSelector(".view[data-control=mine]");
    await page.evaluate(() => {
      document.addEventListener("copy", (event) => {
        (window as unknown as { copied: string }).copied = event.clipboardData?.getData("text/plain") ?? "";
      });
    });
    // Select the first line with the mouse: a double click selects a word, a triple click the line.
    const box = (await page.locator(".xterm-screen").boundingBox())!;
    await page.mouse.click(box.x + 20, box.y + 8, { clickCount: 3 });
    await page.keyboard.press("Control+c");
    await waitFor(
      async () =>
        (await page.evaluate(() => (window as unknown as { copied?: string }).copied))?.includes(
          "error: copy me please",
        ),
      5_000,
    );
    await page.waitForTimeout(500);
    expect(await terminalText(page)).not.toContain("INTERRUPTED");
    // Without a selection, Ctrl+C is ^C again.
    await page.mouse.click(box.x + 20, box.y + 200);
    await page.keyboard.press("Control+c");
    await waitForTerminal(page, (text) => text.includes("INTERRUPTED"));
  });
});
