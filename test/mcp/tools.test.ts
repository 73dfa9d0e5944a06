import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { countingCommand, countingText } from "../client/helpers.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js";
import { mcpStack, sessionStarter } from "./helpers.js";
import { connect } from "../../src/client/node.js";
import { waitFor } from "../helpers/wait-for.js";

/** Tests that wait on processes and agents through a child process: room for a loaded machine. */
const TEST_MS = 60_000;

/** The MCP server's progress interval here (`--progress-ms`): a wait for progress takes 2 s, not 5. */
const PROGRESS_MS = 2000;

const s = mcpStack(["--progress-ms", String(PROGRESS_MS)]);

const start = sessionStarter(s);

describe("switchboard mcp", () => {
  it("lists every tool with a description and an input schema", async () => {
    const { tools } = await s.mcp.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        "abort_run",
        "answer_elicitation",
        "answer_permission",
        "create_agent_session",
        "list_agents",
        "list_sessions",
        "prompt_agent",
        "read_output",
        "read_screen",
        "remove_session",
        "send_input",
        "send_signal",
        "set_agent_mode",
        "set_agent_option",
        "start_session",
        "stop_session",
        "wait_for_output",
        "wait_for_run",
      ].sort(),
    );
    for (const tool of tools) expect(tool.description?.length ?? 0).toBeGreaterThan(60);
    const read = tools.find((t) => t.name === "read_output")!;
    expect(read.inputSchema).toMatchObject({
      type: "object",
      required: ["id"],
      properties: { since: { type: "integer", minimum: 0 }, max_bytes: { type: "integer" } },
    });
    expect(read.annotations).toMatchObject({ readOnlyHint: true });
  });

  it(
    "pages through a session's output with next offsets and rebuilds it exactly",
    async () => {
      const id = await start(countingCommand(3000, 200), { name: "counter" });
      const waited = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "^3000$", timeout_ms: 20_000 });
      expect(waited.data).toMatchObject({ reason: "matched", match: "3000" });
      expect(waited.text).toMatch(/^\[matched "3000" \| /);
      await waitFor(async () => (await s.http.getSession(id)).state === "exited", 10_000);

      const expected = countingText(3000);
      let since = 0;
      let rebuilt = "";
      let pages = 0;
      for (;;) {
        const page = await s.mcp.ok("read_output", { id, since, max_bytes: 1000 });
        expect(page.data.from).toBe(since);
        expect(page.data.next - since).toBeLessThanOrEqual(1000);
        expect(page.text).toBe(`${page.text.split("\n")[0]}\n${page.output}`);
        rebuilt += page.output;
        since = page.data.next;
        pages++;
        if (!page.data.more) {
          expect(page.text).toContain(`bytes ${page.data.from}-${expected.length} of ${expected.length} | the end]`);
          expect(page.data).toMatchObject({ state: "exited", exit_code: 0 });
          break;
        }
        expect(page.text).toContain(`more output waits: read_output since=${since}`);
      }
      expect(rebuilt).toBe(expected);
      expect(pages).toBe(Math.ceil(expected.length / 1000));

      const list = await s.mcp.ok("list_sessions");
      expect(list.text).toMatch(
        new RegExp(`^${id} "counter" terminal/pipe exited with code 0, ${expected.length} output bytes: `, "m"),
      );
      expect(list.data.sessions.find((s: any) => s.id === id)).toMatchObject({
        name: "counter",
        kind: "terminal",
        state: "exited",
        exit_code: 0,
        output_bytes: expected.length,
      });
    },
    TEST_MS,
  );

  it(
    "pages never split a character, and bytes that are not UTF-8 show as \\xNN on a page marked binary",
    async () => {
      const id = await start([
        "sh",
        "-c",
        "printf 'bad \\377 byte\\n'; i=0; while [ $i -lt 40 ]; do printf 'é€𝄞'; i=$((i+1)); done",
      ]);
      await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "never", timeout_ms: 10_000 });
      let since = 0;
      let rebuilt = "";
      const binary: boolean[] = [];
      for (let more = true; more;) {
        const page = await s.mcp.ok("read_output", { id, since, max_bytes: 64 });
        rebuilt += page.output;
        binary.push(page.data.binary === true);
        if (since === 0) {
          expect(page.data).toMatchObject({ binary: true, invalid_bytes: 1 });
          expect(page.text).toContain("| binary: 1 bytes are not UTF-8, shown as \\xNN |");
        }
        since = page.data.next;
        more = page.data.more;
      }
      expect(rebuilt).toBe(`bad \\xff byte\n${"é€𝄞".repeat(40)}`);
      // Only the page with the byte says binary.
      expect(binary.filter(Boolean)).toHaveLength(1);
    },
    TEST_MS,
  );

  it(
    "wait_for_output returns when the pattern appears, and reports a timeout",
    async () => {
      // Timed from before the start (not after it, which can return late on a loaded machine): the
      // line comes 0.6 s after the program starts, so a wait that returns at "starting" is sooner.
      const started = performance.now();
      const id = await start(["sh", "-c", "echo starting; sleep 0.6; echo ready on port 1234; sleep 30"]);
      const ready = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "ready on port (\\d+)" });
      expect(performance.now() - started).toBeGreaterThanOrEqual(600);
      expect(ready.data).toMatchObject({ reason: "matched", match: "ready on port 1234", state: "running", from: 0 });
      expect(ready.output).toBe("starting\nready on port 1234\n");
      expect(ready.text).toContain("starting\nready on port 1234\n");

      const quiet = await s.mcp.ok("wait_for_output", {
        id,
        since: ready.data.next,
        pattern: "never",
        timeout_ms: 300,
      });
      expect({ ...quiet.data, output: quiet.output }).toMatchObject({
        reason: "timeout",
        output: "",
        from: ready.data.next,
        next: ready.data.next,
      });
      expect(quiet.text).toMatch(/^\[timed out after 300 ms without a match \| /);

      const stopped = await s.mcp.ok("stop_session", { id });
      expect(stopped.data.session).toMatchObject({ state: "exited", signal: "SIGTERM" });
      expect(stopped.text).toBe(`Session ${id} exited by signal SIGTERM.`);
      const after = await s.mcp.ok("wait_for_output", { id, since: ready.data.next, pattern: "never" });
      expect(after.data).toMatchObject({ reason: "exited", state: "exited", signal: "SIGTERM" });
      // A wait too short to see the exit frame still tells how the session ended, and where its output ends.
      const short = await s.mcp.ok("wait_for_output", { id, timeout_ms: 1 });
      expect(short.data).toMatchObject({ state: "exited", signal: "SIGTERM", next: ready.data.next });
    },
    TEST_MS,
  );

  it(
    "tells a client that asked for progress how a long wait goes, so that it can keep waiting",
    async () => {
      const id = await start(["cat"]);
      const notes: Progress[] = [];
      // From byte 0: without since the wait would count only what comes after it looked at the
      // session, and the line sent next may already be there by then.
      const waiting = s.mcp.client.callTool(
        {
          name: "wait_for_output",
          arguments: { id, since: 0, pattern: "NEVER", timeout_ms: PROGRESS_MS + 1500 },
        },
        undefined,
        // Shorter than the wait: only progress notifications keep the call alive (the SDK client resets its timeout on each).
        { onprogress: (note) => notes.push(note), timeout: PROGRESS_MS + 1000, resetTimeoutOnProgress: true },
      );
      await s.http.input(id, "hello\n");
      const result = (await waiting) as CallToolResult;
      expect(result.isError).not.toBe(true);
      expect(result.structuredContent).toMatchObject({ reason: "timeout" });
      expect(notes).toHaveLength(1);
      expect(notes[0]).toMatchObject({
        total: PROGRESS_MS + 1500,
        message: "6 bytes of new output, no match for /NEVER/ yet",
      });
      // Timers run on libuv's millisecond clock, read once per loop turn: one can fire up to 1 ms
      // before performance.now() says its interval has passed (CI measured 1999 for 2000).
      expect(notes[0]!.progress).toBeGreaterThanOrEqual(PROGRESS_MS - 1);
      await s.mcp.ok("stop_session", { id });

      // An agent's run: the echo agent streams 900 characters in about 4.5 s.
      const agent = (await s.mcp.ok("create_agent_session", { agent: "echo" })).data.session.id as string;
      const runNotes: Progress[] = [];
      const answer = (await s.mcp.client.callTool(
        { name: "prompt_agent", arguments: { id: agent, text: "a".repeat(900) } },
        undefined,
        { onprogress: (note) => runNotes.push(note), timeout: 60_000 },
      )) as CallToolResult;
      expect(answer.structuredContent).toEqual(expect.objectContaining({ status: "chat.final", answer_chars: 900 }));
      expect(answer.content[1]).toEqual({ type: "text", text: "a".repeat(900) });
      expect(runNotes.length).toBeGreaterThanOrEqual(1);
      const said = /^(\d+) characters of answer so far$/.exec(runNotes[0]!.message ?? "");
      expect(said, runNotes[0]!.message).not.toBeNull();
      expect(Number(said![1])).toBeGreaterThan(0);
      expect(Number(said![1])).toBeLessThan(900);
    },
    TEST_MS,
  );

  it(
    "refuses a pattern that backtracks without end, and goes on serving",
    async () => {
      const id = await start(["sh", "-c", "printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\\n'; sleep 30"]);
      const started = Date.now();
      const slow = await s.mcp.call("wait_for_output", { id, since: 0, pattern: "^(a+)+$", timeout_ms: 2000 });
      expect(slow.isError).toBe(true);
      expect(slow.text).toMatch(/^VALIDATION_FAILED: pattern: the pattern ran over 100 ms on the output/);
      expect(Date.now() - started).toBeLessThan(2000);
      expect((await s.mcp.ok("list_sessions", {})).text).toContain(id);
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  it(
    "wait_for_output returns the latest output, up to the match, when more arrives than it may return",
    async () => {
      const id = await start(["sh", "-c", "yes | head -c 200000; sleep 0.3; echo all done"]);
      const done = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "^all done$", max_bytes: 100 });
      expect(done.data).toMatchObject({ reason: "matched", start: 0, from: 200_009 - 100, next: 200_009 });
      expect(done.output).toBe(`\n${"y\n".repeat(45)}all done\n`);
      expect(done.text).toContain(`(bytes 0-${200_009 - 100} are not shown: read_output since=0)`);
    },
    TEST_MS,
  );

  it(
    "wait_for_output without a pattern returns the next burst of output",
    async () => {
      // The burst comes once the wait follows the session (it counts as a viewer), when the test says
      // so. After a fixed sleep instead, on a loaded machine the burst could come before the wait
      // started, which then saw nothing new and timed out.
      const id = await start(["sh", "-c", "read go; echo one; echo two; sleep 30"]);
      const waiting = s.mcp.ok("wait_for_output", { id, timeout_ms: 10_000 });
      await waitFor(async () => (await s.http.getSession(id)).viewers === 1, 10_000);
      await s.http.input(id, "go\n");
      const burst = await waiting;
      expect({ ...burst.data, output: burst.output }).toMatchObject({
        reason: "output",
        output: "one\ntwo\n",
        start: 0,
      });
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  // The gateway's CONTROL_HELD advises "acquire control with force", which no tool here does.
  it(
    "says who holds a session's control when send_input is refused, with what an agent can do",
    async () => {
      const id = await start(["cat"]);
      const holder = await connect({ url: s.gw.url, token: s.gw.token });
      try {
        await holder.control(id, "acquire");
        const refused = await s.mcp.call("send_input", { id, text: "x" });
        expect(refused.text).toBe(
          "CONTROL_HELD: control of this session is held by another connection of admin (someone else steers this session, e.g. an attached terminal; wait, or ask them to detach)",
        );
      } finally {
        holder.close();
      }
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  it(
    "send_input types lines into sort and eof ends its input",
    async () => {
      const id = await start(["sort"]);
      const first = await s.mcp.ok("send_input", { id, text: "pear" });
      expect(first.data).toMatchObject({ bytes: 5, eof: false, output_offset: 0 });
      await s.mcp.ok("send_input", { id, text: "apple" });
      const last = await s.mcp.ok("send_input", { id, text: "fig", eof: true });
      expect(last.text).toMatch(/^Sent 4 bytes and closed its input to /);
      const sorted = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "pear", timeout_ms: 10_000 });
      expect(sorted.output).toBe("apple\nfig\npear\n");
      const ended = await s.mcp.ok("wait_for_output", { id, since: sorted.data.next, timeout_ms: 10_000 });
      expect(ended.data).toMatchObject({ reason: "exited", exit_code: 0 });

      const cat = await start(["cat"]);
      await s.mcp.ok("send_input", { id: cat, text: "no newline", enter: false });
      await s.mcp.ok("send_input", { id: cat, text: "", enter: false, eof: true });
      const echoed = await s.mcp.ok("wait_for_output", { id: cat, since: 0, pattern: "line", timeout_ms: 10_000 });
      expect(echoed.output).toBe("no newline");
    },
    TEST_MS,
  );

  it(
    "a PTY session takes input with Enter and its output is plain text",
    async () => {
      const id = await start(["sh"], { pty: true, env: { PS1: "$ " } });
      // Type only after the prompt, as a person would. Typed earlier (the shell still starting on a
      // loaded machine), the terminal echoes the line before the prompt is printed and the output
      // follows the prompt on its line ("$ red-42"), so "^red-42$" never matched and the wait timed out.
      const prompt = await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "^\\$ $", timeout_ms: 10_000 });
      expect({ ...prompt.data, output: prompt.output }).toMatchObject({ reason: "matched", output: "$ " });
      const sent = await s.mcp.ok("send_input", { id, text: "printf '\\033[31m%s\\033[0m\\n' red-$((40+2))" });
      const red = await s.mcp.ok("wait_for_output", {
        id,
        since: sent.data.output_offset,
        pattern: "^red-42$",
        timeout_ms: 10_000,
      });
      expect(red.data.reason).toBe("matched");
      expect(red.output).not.toContain("\x1b");
      expect(red.output).not.toContain("\r");
      const raw = await s.mcp.ok("read_output", { id, since: sent.data.output_offset, raw: true });
      expect(raw.output).toContain("\x1b[31mred-42\x1b[0m\r\n");

      await s.mcp.ok("send_input", { id, text: "exit 7" });
      const gone = await s.mcp.ok("wait_for_output", {
        id,
        since: red.data.next,
        pattern: "never",
        timeout_ms: 10_000,
      });
      expect(gone.data).toMatchObject({ reason: "exited", exit_code: 7 });
    },
    TEST_MS,
  );

  it(
    "send_signal INT ends a sleep",
    async () => {
      const id = await start(["sleep", "30"]);
      const sent = await s.mcp.ok("send_signal", { id, signal: "int" });
      expect(sent.data).toEqual({ id, signal: "INT" });
      const ended = await s.mcp.ok("wait_for_output", { id, since: 0, timeout_ms: 10_000 });
      expect(ended.data).toMatchObject({ reason: "exited", signal: "SIGINT" });
      expect(ended.text).toContain(`${id} exited by signal SIGINT`);
      const removed = await s.mcp.ok("remove_session", { id });
      expect(removed.data).toEqual({ removed: [id] });
      expect((await s.mcp.call("read_output", { id })).text).toMatch(/^SESSION_NOT_FOUND: /);
    },
    TEST_MS,
  );

  it(
    "prompt_agent sends content: a link goes to an echo agent with the text, an image is refused UNSUPPORTED_CONTENT",
    async () => {
      const created = await s.mcp.ok("create_agent_session", { agent: "echo" });
      const id = created.data.session.id as string;
      const link = { type: "resource_link", uri: "https://example.com/bug/9", name: "9" };
      const answered = await s.mcp.ok("prompt_agent", { id, text: "see", content: [link], timeout_ms: 60_000 });
      expect(answered.data.status).toBe("chat.final");
      expect(answered.output).toBe("see\n\nhttps://example.com/bug/9");
      const image = { type: "image", mimeType: "image/png", data: "iVBORw0KGgo=" };
      expect((await s.mcp.call("prompt_agent", { id, content: [image] })).text).toMatch(
        /^UNSUPPORTED_CONTENT: content\[0\] is an image, which the agent does not take/,
      );
    },
    TEST_MS,
  );

  it(
    "set_agent_mode and set_agent_option switch an ACP agent's mode and model; what it does not offer is named",
    async () => {
      const agent = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));
      const { id } = await s.http.createSession({
        kind: "agent",
        agent: { adapter: "acp", command: [process.execPath, agent, "--state"] },
      });
      const mode = await s.mcp.ok("set_agent_mode", { id, mode_id: "code" });
      expect(mode.data).toEqual({ id, mode: "code", model: "slow-1" });
      expect(mode.text).toBe(`${id} is in mode code. Now: mode code, model slow-1.`);
      const model = await s.mcp.ok("set_agent_option", { id, config_id: "model", value: "fast-1" });
      expect(model.data).toEqual({ id, mode: "code", model: "fast-1" });
      expect((await s.mcp.call("set_agent_mode", { id, mode_id: "plan" })).text).toBe(
        'INVALID_OPTION: the agent offers no mode "plan"; its modes: ask, code',
      );
      expect((await s.http.getSession(id)).agentState).toMatchObject({
        modes: { currentModeId: "code" },
        model: "fast-1",
      });
    },
    TEST_MS,
  );

  it(
    "wait_for_run with timeout_ms 0 says how the run stands now: done, or waiting for a permission answer (exploratory test: timeout)",
    async () => {
      const created = await s.mcp.ok("create_agent_session", { agent: "echo" });
      const id = created.data.session.id as string;
      const finished = await s.mcp.ok("prompt_agent", { id, text: "hello there", timeout_ms: 60_000 });
      expect(finished.data.status).toBe("chat.final");
      const asking = await s.mcp.ok("prompt_agent", { id, text: "/permission go", timeout_ms: 60_000 });
      expect(asking.data.status).toBe("permission");
      for (let round = 0; round < 3; round++) {
        const done = await s.mcp.ok("wait_for_run", { id, run_id: finished.data.run_id, timeout_ms: 0 });
        expect(done.data, `round ${round}`).toMatchObject({ status: "chat.final" });
        expect(done.output, `round ${round}`).toBe("hello there");
        const waiting = await s.mcp.ok("wait_for_run", { id, run_id: asking.data.run_id, timeout_ms: 0 });
        expect(waiting.data.status, `round ${round}`).toBe("permission");
      }
      await s.mcp.ok("abort_run", { id, all: true });
    },
    TEST_MS,
  );

  it(
    "prompt_agent returns when a permission request waits; answer_permission answers it and wait_for_run goes on",
    async () => {
      const created = await s.mcp.ok("create_agent_session", { agent: "echo" });
      const id = created.data.session.id as string;
      const asked = await s.mcp.ok("prompt_agent", { id, text: "/permission go", timeout_ms: 60_000 });
      expect(asked.data.status).toBe("permission");
      // snake_case like every tool field, and option ids answer_permission takes as they are.
      const pending = asked.data.pending_permission as {
        request_id: string;
        title: string;
        options: Array<{ option_id: string; name: string; kind: string }>;
      };
      expect(pending.options.map((o) => o.option_id)).toContain("allow");
      expect(pending.options.every((o) => o.name.length > 0 && o.kind.length > 0)).toBe(true);
      expect(asked.text).toContain(`"request_id": "${pending.request_id}"`);
      expect(asked.text).toMatch(/options: allow \(\w+\)/);
      // Regression (exploratory test): the text said answer_permission {"id", "request_id": "…", "option_id"}:
      // not JSON, without the session's id or an option id. It is a call to make as it is.
      const hint = /answer_permission (\{.*?\})(?: \(option_id: (.*?)\))? answers it/.exec(asked.text);
      expect(hint, asked.text).not.toBeNull();
      expect(JSON.parse(hint![1]!)).toEqual({
        id,
        request_id: pending.request_id,
        option_id: pending.options[0]!.option_id,
      });
      if (pending.options.length > 1) {
        for (const option of pending.options) expect(hint![2]).toContain(JSON.stringify(option.option_id));
      }
      const answered = await s.mcp.ok("answer_permission", { ...JSON.parse(hint![1]!), option_id: "allow" });
      expect(answered.text).toContain("Answered");
      // Following from the start of the run, the answered request does not stop it again.
      const done = await s.mcp.ok("wait_for_run", { id, run_id: asked.data.run_id });
      expect(done.data).toMatchObject({ status: "chat.final" });
      expect(done.output).toBe("Allowed. go");
      const again = await s.mcp.call("answer_permission", { id, request_id: pending.request_id, option_id: "allow" });
      expect(again.isError).toBe(true);
      expect(again.text).toMatch(/^PERMISSION_REQUEST_NOT_FOUND: /);
    },
    TEST_MS,
  );

  it(
    "prompt_agent queued behind a run that waits for a permission answer returns at once as blocked, with the request to answer",
    async () => {
      const created = await s.mcp.ok("create_agent_session", { agent: "echo" });
      const id = created.data.session.id as string;
      const first = await s.mcp.ok("prompt_agent", { id, text: "/permission go", wait: false });
      const firstRun = first.data.run_id as string;
      // The first run's request is open before the second prompt: it is found in the log.
      await s.mcp.ok("wait_for_run", { id, run_id: firstRun, timeout_ms: 30_000 });
      const started = Date.now();
      const second = await s.mcp.ok("prompt_agent", { id, text: "next one", timeout_ms: 60_000 });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(second.data.status).toBe("blocked");
      const blockedBy = second.data.blocked_by as { run_id: string; permission: { request_id: string } };
      expect(blockedBy.run_id).toBe(firstRun);
      expect(second.text).toContain(`queued behind run ${firstRun}, which waits for a permission answer`);
      expect(second.text).toContain(`"request_id": "${blockedBy.permission.request_id}"`);
      // Again, from where it was queued: still blocked.
      const again = await s.mcp.ok("wait_for_run", { id, run_id: second.data.run_id, timeout_ms: 60_000 });
      expect(again.data.status).toBe("blocked");
      await s.mcp.ok("answer_permission", { id, request_id: blockedBy.permission.request_id, option_id: "allow" });
      const done = await s.mcp.ok("wait_for_run", { id, run_id: second.data.run_id, timeout_ms: 60_000 });
      expect(done.data).toMatchObject({ status: "chat.final" });
      expect(done.output).toBe("next one");
    },
    TEST_MS,
  );

  it(
    "prompt_agent returns the echo agent's answer, and chat.error for /fail",
    async () => {
      const agents = await s.mcp.ok("list_agents", {});
      expect(agents.data.agents).toEqual([{ id: "echo", adapter: "echo", source: "built-in" }]);
      expect(agents.text).toBe("echo (echo, built-in)");
      const created = await s.mcp.ok("create_agent_session", { agent: "echo", name: "helper" });
      const id = created.data.session.id as string;
      expect(created.data.session).toMatchObject({ kind: "agent", agent: "echo", name: "helper" });

      const answer = await s.mcp.ok("prompt_agent", { id, text: "hello from the test" });
      expect(answer.data).toMatchObject({ status: "chat.final", answer_chars: 19, stop_reason: "end_turn" });
      expect(answer.data).not.toHaveProperty("answer");
      expect(answer.output).toBe("hello from the test");
      expect(answer.text).toMatch(/^\[run \S+ of \S+: chat\.final \(finished, end_turn\)\]\nhello from the test$/);

      const failed = await s.mcp.ok("prompt_agent", { id, text: "/fail half an answer" });
      expect(failed.data).toMatchObject({ status: "chat.error", error: { code: "AGENT_FAILED" } });
      expect(failed.output).toBe("half an answer");
      expect(failed.text).toContain("chat.error AGENT_FAILED: the echo agent failed on purpose");

      const tool = await s.mcp.ok("prompt_agent", { id, text: "/tool count me", wait: false });
      expect(tool.data).toMatchObject({ status: "queued" });
      const later = await s.mcp.ok("wait_for_run", { id, run_id: tool.data.run_id, timeout_ms: 20_000 });
      expect(later.data).toMatchObject({ status: "chat.final" });
      expect(later.output).toBe("count me");
      expect(later.data.notes).toEqual([
        "[tool] Count characters (in_progress)",
        "[tool] Count characters (completed)",
      ]);

      const slow = await s.mcp.ok("prompt_agent", { id, text: "x".repeat(600), timeout_ms: 200 });
      expect(slow.data.status).toBe("timeout");
      expect(slow.text).toContain("wait_for_run continues waiting");
      const queued = await s.mcp.ok("prompt_agent", { id, text: "behind the slow one", wait: false });
      expect(queued.data).toMatchObject({ status: "queued" });
      const aborted = await s.mcp.ok("abort_run", { id, all: true });
      expect(aborted.data).toEqual({ id, run_id: slow.data.run_id, cleared: 1 });
      expect(aborted.text).toBe(`Aborted run ${slow.data.run_id} of ${id}; dropped 1 queued prompt.`);
      const end = await s.mcp.ok("wait_for_run", { id, run_id: slow.data.run_id });
      expect(end.data.status).toBe("chat.aborted");

      const wrong = await s.mcp.call("wait_for_output", { id });
      expect(wrong).toMatchObject({ isError: true, code: "WRONG_SESSION_KIND" });
      // And the other way round (exploratory test: "session … has no run x" for a terminal).
      const terminal = await start(["sh", "-c", "echo hi"]);
      const noRuns = await s.mcp.call("wait_for_run", { id: terminal, run_id: "x" });
      expect(noRuns).toMatchObject({ isError: true, code: "WRONG_SESSION_KIND" });
      expect(noRuns.text).toMatch(/only agent sessions have runs/);
    },
    TEST_MS,
  );

  it("answers bad ids and arguments with coded tool errors and keeps serving", async () => {
    const missing = await s.mcp.call("read_output", { id: "no-such-session" });
    expect(missing.isError).toBe(true);
    expect(missing.code).toBe("SESSION_NOT_FOUND");
    expect(missing.text).toMatch(/^SESSION_NOT_FOUND: .*list_sessions/);

    const negative = await s.mcp.call("read_output", { id: "x", since: -1 });
    expect(negative).toMatchObject({ isError: true, code: "VALIDATION_FAILED" });
    expect(negative.text).toMatch(/^VALIDATION_FAILED: since: /);

    const empty = await s.mcp.call("start_session", { command: [] });
    expect(empty.text).toMatch(/^VALIDATION_FAILED: command: /);
    const typo = await s.mcp.call("wait_for_output", { id: "x", timeout: 5 });
    expect(typo.text).toMatch(/^VALIDATION_FAILED: .*timeout/);
    const regex = await s.mcp.call("wait_for_output", { id: "x", pattern: "(" });
    expect(regex.text).toMatch(/^VALIDATION_FAILED: pattern: /);
    const relative = await s.mcp.call("start_session", { command: ["true"], cwd: "/no/such/dir/here" });
    expect(relative.isError).toBe(true);
    expect(relative.code).toMatch(/SPAWN_FAILED|VALIDATION_FAILED/);
    const signal = await s.mcp.call("send_signal", { id: "x", signal: "NOPE" });
    expect(signal.code).toMatch(/VALIDATION_FAILED|SESSION_NOT_FOUND/);
    const agent = await s.mcp.call("create_agent_session", { agent: "no-such-agent" });
    expect(agent.code).toBe("AGENT_NOT_FOUND");

    // The code once, not "MCP error -32602: MCP error -32602: unknown tool".
    await expect(s.mcp.client.callTool({ name: "no_such_tool", arguments: {} })).rejects.toThrow(
      /^MCP error -32602: unknown tool no_such_tool; tools\/list lists the \d+ tools$/,
    );
    // Arguments that are not an object are the caller's mistake: -32602 and a sentence, where the
    // MCP SDK answered -32603 (an internal error) with a zod dump.
    for (const [args, kind] of [
      ["x", "string"],
      [[1], "an array"],
      [null, "null"],
    ] as const) {
      await expect(
        s.mcp.client.request(
          { method: "tools/call", params: { name: "list_sessions", arguments: args as never } },
          CallToolResultSchema,
        ),
      ).rejects.toThrow(
        `MCP error -32602: arguments must be an object of the tool's parameters by name (tools/list gives each tool's inputSchema), not ${kind}`,
      );
    }
    const list = await s.mcp.call("list_sessions");
    expect(list.isError).toBe(false);
  });
});
