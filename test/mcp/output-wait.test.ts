import { describe, expect, it } from "vitest";
import { mcpStack } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

/** Tests that wait on processes through a child process: room for a loaded machine. */
const TEST_MS = 60_000;

const s = mcpStack();

async function start(command: string[]): Promise<string> {
  const { data } = await s.mcp.ok("start_session", { command });
  return data.session.id as string;
}

/** Resolves once the session has printed `bytes` bytes (a condition, not a sleep). */
async function printed(id: string, bytes: number): Promise<void> {
  await waitFor(async () => (await s.http.getSession(id)).outputBytes === bytes, 20_000);
}

/** A session's plain text read page after page of `max_bytes`, each page moving on. */
async function readPages(id: string, max_bytes: number): Promise<string> {
  let since = 0;
  let text = "";
  for (let more = true; more;) {
    const page = await s.mcp.ok("read_output", { id, since, max_bytes });
    text += page.output as string;
    expect(page.data.next).toBeGreaterThan(since);
    since = page.data.next as number;
    more = page.data.more as boolean;
  }
  return text;
}

/** `seq 1 n` as the program prints it. */
function seqText(n: number): string {
  let out = "";
  for (let i = 1; i <= n; i++) out += `${i}\n`;
  return out;
}

describe("wait_for_output on output that is already there", () => {
  // Regression (exploratory test): the replay comes in 256 KiB frames and the pattern only ever
  // saw the last 64 K characters of a frame, so a line early in a big burst was never matched.
  it(
    "finds a match early in a big burst, returns the output up to it and says where its line starts",
    async () => {
      const head = "listening on 3000\n";
      const total = head.length + seqText(20_000).length;
      const id = await start(["sh", "-c", "echo listening on 3000; seq 1 20000; sleep 60"]);
      await printed(id, total);

      const found = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "listening on", timeout_ms: 10_000 });
      expect(found.data).toMatchObject({ reason: "matched", match: "listening on", match_line_offset: 0, from: 0 });
      // The output up to the end of the match's line, not the rest of the burst: that is next time's.
      expect({ ...found.data, output: found.output }).toMatchObject({ output: head, next: head.length });
      expect(found.text).toMatch(/^\[matched "listening on" \| /);

      // A line in the middle of the burst: where it starts, exactly.
      const line = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "^15000$", timeout_ms: 10_000 });
      const at = head.length + seqText(14_999).length;
      expect(line.data).toMatchObject({ reason: "matched", match: "15000", match_line_offset: at });

      // Only the latest bytes are returned (the answer ends at the end of the line a match ends
      // on, here 30 lines after the one it begins on): the answer says where the match is.
      const small = await s.mcp.ok("wait_for_output", {
        id,
        since: 0,
        pattern: "^listening on 3000\\n(?:\\d+\\n){30}",
        max_bytes: 64,
      });
      expect(small.data).toMatchObject({ reason: "matched", match_line_offset: 0, next: 99 });
      expect(small.data.from).toBeGreaterThan(0);
      expect(small.output).not.toContain("listening");
      expect(small.text).toContain(
        `matched ${JSON.stringify(small.data.match)} on the line from byte 0 (not shown below: read_output since=0)`,
      );
      const there = await s.mcp.ok("read_output", { id, since: small.data.match_line_offset, max_bytes: 64 });
      expect(there.output!.startsWith("listening on 3000\n")).toBe(true);
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  // Regression (exploratory test): the timeout started before the connection did, so
  // timeout_ms: 0 never saw output that was already there ("timed out … bytes 0-0").
  it(
    "timeout_ms 0 looks at the output that is there now",
    async () => {
      const id = await start(["sh", "-c", "echo READY; sleep 60"]);
      await printed(id, 6);
      const ready = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "READY", timeout_ms: 0 });
      expect({ ...ready.data, output: ready.output }).toMatchObject({
        reason: "matched",
        match: "READY",
        output: "READY\n",
        next: 6,
      });

      // Without a pattern, output that came is the answer, also when the time is up: not "without new output".
      const any = await s.mcp.ok("wait_for_output", { id, since: 0, timeout_ms: 0 });
      expect({ ...any.data, output: any.output }).toMatchObject({ reason: "output", output: "READY\n", next: 6 });
      expect(any.text).toMatch(/^\[new output \| /);

      const none = await s.mcp.ok("wait_for_output", { id, since: 6, pattern: "READY", timeout_ms: 0 });
      expect({ ...none.data, output: none.output }).toMatchObject({ reason: "timeout", output: "", next: 6 });
      expect(none.text).toMatch(/^\[timed out after 0 ms without a match \| /);
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );
});

describe("wait_for_output, output after the match and split escape sequences", () => {
  // Regression (exploratory test): the answer and next ran to the end of the 16 KiB step the
  // match was in, so the lines after it in the same write were skipped: a wait for them from
  // next timed out.
  it(
    "returns up to the end of the matched line; what came after it in the same write comes with next",
    async () => {
      const burst = "\x1b[1mbuilding\x1b[0m ✓\nBUILD OK \x1b[32m😀\x1b[0m\ntests: 3 passed\n$ ";
      const script = `process.stdout.write(${JSON.stringify(burst)}); setTimeout(() => {}, 60000)`;
      const id = await start([process.execPath, "-e", script]);
      await printed(id, Buffer.byteLength(burst));

      const built = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "BUILD OK", timeout_ms: 10_000 });
      const upTo = burst.slice(0, burst.indexOf("\ntests") + 1);
      expect({ ...built.data, output: built.output }).toMatchObject({
        reason: "matched",
        output: "building ✓\nBUILD OK 😀\n",
        from: 0,
        next: Buffer.byteLength(upTo),
      });
      const tests = await s.mcp.ok("wait_for_output", {
        id,
        since: built.data.next,
        pattern: "^tests: .*\n",
        timeout_ms: 10_000,
      });
      expect({ ...tests.data, output: tests.output }).toMatchObject({ reason: "matched", output: "tests: 3 passed\n" });
      const prompt = await s.mcp.ok("wait_for_output", {
        id,
        since: tests.data.next,
        pattern: "\\$ $",
        timeout_ms: 10_000,
      });
      expect({ ...prompt.data, output: prompt.output }).toMatchObject({
        reason: "matched",
        output: "$ ",
        next: Buffer.byteLength(burst),
      });
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  // Regression (exploratory test): a wait whose whole new output was the start of an escape
  // sequence took it (next after it), and the next wait showed its rest as text ("1mRED").
  it(
    "leaves an escape sequence that has not ended for the next wait",
    async () => {
      const id = await start(["sh", "-c", "printf ' \\033[3'; read x; printf '1mRED\\033[0m\\n'; sleep 60"]);
      await printed(id, 4);
      const first = await s.mcp.ok("wait_for_output", { id, since: 0, timeout_ms: 0 });
      expect({ ...first.data, output: first.output }).toMatchObject({ reason: "output", output: " ", next: 1 });
      const second = await s.mcp.ok("wait_for_output", { id, since: 1, timeout_ms: 500 });
      expect({ ...second.data, output: second.output }).toMatchObject({ reason: "timeout", output: "", next: 1 });
      await s.mcp.ok("send_input", { id, text: "go" });
      const third = await s.mcp.ok("wait_for_output", { id, since: 1, pattern: "RED", timeout_ms: 10_000 });
      expect({ ...third.data, output: third.output }).toMatchObject({ reason: "matched", output: "RED\n", next: 14 });
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  // Regression (exploratory test): the latest max_bytes began inside "\x1b[33m" and showed "[33m…".
  it(
    "starts the latest max_bytes after an escape sequence they would start inside",
    async () => {
      // The last 64 bytes start right after the ESC of the colour.
      const tail = `[33m${"c".repeat(59)}\n`;
      const script = `process.stdout.write("a".repeat(200) + "\\x1b" + ${JSON.stringify(tail)}); setTimeout(() => {}, 60000)`;
      const id = await start([process.execPath, "-e", script]);
      await printed(id, 201 + tail.length);
      for (const pattern of [undefined, "c\n"]) {
        const cut = await s.mcp.ok("wait_for_output", { id, since: 0, pattern, max_bytes: 64, timeout_ms: 10_000 });
        expect({ ...cut.data, output: cut.output }, `pattern ${pattern}`).toMatchObject({
          output: `${"c".repeat(59)}\n`,
          from: 205,
          next: 265,
        });
      }
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );
});

describe("read_output pages", () => {
  // Regression (exploratory test): a page that ended inside a line rewritten with carriage
  // returns showed the last part of it in the page, and the next page its own last part.
  it(
    "give the same plain text as one read when a page would end inside a progress bar",
    async () => {
      // A progress line of 10 updates (14 bytes each) that pages of 64 to 100 bytes cut here and there.
      const script =
        "for i in $(seq 1 5); do printf 'line %s\\n' $i; done; for p in $(seq 10 10 100); do printf 'progress %3d%%\\r' $p; done; printf '\\ndone\\n'";
      const id = await start(["sh", "-c", script]);
      await waitFor(async () => (await s.http.getSession(id)).state === "exited", 20_000);
      const whole = await s.mcp.ok("read_output", { id });
      expect(whole.output).toBe("line 1\nline 2\nline 3\nline 4\nline 5\nprogress 100%\ndone\n");
      for (let max_bytes = 64; max_bytes <= 100; max_bytes++) {
        expect(await readPages(id, max_bytes), `pages of ${max_bytes}`).toBe(whole.output);
      }
    },
    TEST_MS,
  );

  // Regression (exploratory test): a page that ended inside an OSC hyperlink begun more than
  // 256 bytes before its end was cut there, and the next page showed the rest of it as text.
  it(
    "give the same plain text as one read when a page would end inside a hyperlink",
    async () => {
      const script =
        "process.stdout.write('f'.repeat(65000) + '\\x1b]8;;https://example.com/' + 'p'.repeat(1000) + '\\x1b\\\\link\\x1b]8;;\\x1b\\\\ rest\\n')";
      const id = await start([process.execPath, "-e", script]);
      await waitFor(async () => (await s.http.getSession(id)).state === "exited", 20_000);

      const whole = await s.mcp.ok("read_output", { id, max_bytes: 262_144 });
      expect(whole.output).toBe(`${"f".repeat(65_000)}link rest\n`);
      for (const max_bytes of [65_536, 4096]) {
        expect(await readPages(id, max_bytes), `pages of ${max_bytes}`).toBe(whole.output);
      }
    },
    TEST_MS,
  );
});
