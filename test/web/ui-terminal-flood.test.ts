/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * A PTY flooding output: the page asks for `lag: "screen"`, so it never trails the gateway by
 * more than a screen's worth, and Ctrl-C brings the prompt back at once.
 */
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import { foregroundJob } from "../sessions/process-helpers.js";
import { waitForTerminal } from "./harness.js";
import { createShell, stack, useBrowser, waitForPrompt } from "./ui-helpers.js";

useBrowser();

const PROMPT = /^dev@switchboard:~\/app\$$/;
const INTERRUPTED = /\^C/;

/**
 * The prompt is the terminal's last line, after the ^C: the shell is back. The ^C is echoed where
 * the cursor is, so after a CR it covers the start of seq's last line ("^C27200").
 */
function promptBack(text: string): boolean {
  const lines = text.trimEnd().split("\n");
  return PROMPT.test(lines.at(-1)!.trimEnd()) && INTERRUPTED.test(lines.at(-2) ?? "");
}

describe("web UI under a flood", () => {
  // During a flood the page follows from a screen instead of drawing every byte, including the
  // output that waits in socket buffers, which neither the gateway's lag check nor the page's
  // queue sees (web/src/lag-probe.ts finds it); so Ctrl-C's prompt shows at once.
  it(
    "shows the shell prompt within 1 s of Ctrl-C during `seq 1 300000000`, with a mark saying what it skipped",
    { timeout: 120_000 },
    async () => {
      const s = await stack();
      const id = await createShell(s.http, "flood");
      await waitForPrompt(s.http, id);
      const page = await s.page({ hash: `#/s/${id}` });
      await page.waitForSelector(".terminal-view[data-control=mine][data-restored=true]");
      await page.click(".term-host");
      await page.keyboard.type("seq 1 300000000\n");
      const { pid } = (await s.http.get(`/v1/sessions/${id}`)).json as { pid: number };
      await waitFor(() => foregroundJob(pid, "seq 1 300000000"), 10_000, "seq in the foreground");
      const session = s.gateway.core.sessions.get(id)!;
      await waitFor(async () => session.log.outputBytes > 20_000_000, 60_000, "20 MB of seq");
      // The page fell behind and was sent the screen: it says so.
      const mark = await page.waitForSelector("[data-test=skip-mark]:not([hidden])", { timeout: 10_000 });
      expect(await mark.textContent()).toMatch(/^skipped \d+(\.\d)? (MB|kB) — full output kept in the log/);

      // Timed in the page, from the key's event to the check that finds the prompt, as a person at
      // the keyboard sees it: not the test's own round trips to a busy renderer (each poll reads
      // the whole terminal over the DevTools protocol).
      await page.evaluate(() =>
        document.addEventListener(
          "keydown",
          (e) => {
            const w = window as unknown as { ctrlCAt?: number };
            if (e.ctrlKey && e.key === "c") w.ctrlCAt ??= performance.now();
          },
          { capture: true },
        ),
      );
      const start = Date.now();
      // Where the time went, for the message of a failure: when the gateway logged the ^C, when
      // the output first did not grow for 20 ms, and when it logged the prompt (ms from the key).
      const server: { input?: number; floodEnd?: number; prompt?: number } = {};
      let lastBytes = session.log.outputBytes;
      const grows = setInterval(() => {
        if (session.log.outputBytes !== lastBytes) lastBytes = session.log.outputBytes;
        else server.floodEnd ??= Date.now() - start;
      }, 20);
      const stopListening = session.log.subscribe(
        (entry) => {
          if (entry.type === "input") server.input ??= Date.now() - start;
          else if (server.input !== undefined && entry.type === "output" && entry.json.includes("dev@switchboard"))
            server.prompt ??= Date.now() - start;
        },
        { background: true },
      );
      await page.keyboard.press("Control+c");
      const shown = await page.waitForFunction(
        ({ prompt, interrupted }) => {
          const w = window as unknown as { __switchboard?: { view(): { text: string } | null }; ctrlCAt?: number };
          // promptBack, in the page.
          const lines = (w.__switchboard?.view()?.text ?? "").trimEnd().split("\n");
          const back =
            new RegExp(prompt).test((lines.at(-1) ?? "").trimEnd()) && new RegExp(interrupted).test(lines.at(-2) ?? "");
          return back && w.ctrlCAt !== undefined ? performance.now() - w.ctrlCAt : false;
        },
        { prompt: PROMPT.source, interrupted: INTERRUPTED.source },
        { polling: 20, timeout: 10_000 },
      );
      const elapsed = (await shown.jsonValue()) as number;
      clearInterval(grows);
      stopListening();
      const where = `in the page; ${Date.now() - start} ms in the test; the gateway's times: ${JSON.stringify(server)}`;
      expect(elapsed, where).toBeLessThan(1_000);
      await waitForTerminal(page, promptBack, 1_000, "the prompt after ^C");
    },
  );
});
