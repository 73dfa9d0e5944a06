import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import type { JsonSchemaType } from "@modelcontextprotocol/sdk/validation";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_OUTPUT_BYTES } from "../../src/mcp/output-tools.js";
import { mcpStack, sessionStarter } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

/** Tests that wait on processes through a child process: room for a loaded machine. */
const TEST_MS = 60_000;
/** Claude Code's default limit for one tool result, in tokens (MAX_MCP_OUTPUT_TOKENS). */
const CLAUDE_CODE_RESULT_TOKENS = 25_000;

const s = mcpStack();
const validator = new AjvJsonSchemaValidator();
let tools: Map<string, Tool>;

beforeAll(async () => {
  tools = new Map((await s.mcp.client.listTools()).tools.map((tool) => [tool.name, tool]));
});

/** A tool call's whole result, as the client got it (after the SDK's client checked it against the tool's outputSchema). */
async function raw(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await s.mcp.client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 })) as CallToolResult;
}

/** Checks a result against its tool's outputSchema with the validator the SDK's client uses, and returns its parts. */
function checked(name: string, result: CallToolResult): { header: string; body: string | undefined; data: any } {
  expect(result.isError, JSON.stringify(result.content)).not.toBe(true);
  const verdict = validator.getValidator(tools.get(name)!.outputSchema as JsonSchemaType)(result.structuredContent);
  expect(verdict.errorMessage, `${name}: ${JSON.stringify(result.structuredContent)}`).toBeUndefined();
  expect(verdict.valid).toBe(true);
  const texts = result.content.map((c) => (c.type === "text" ? c.text : ""));
  return { header: texts[0]!, body: texts[1], data: result.structuredContent };
}

const start = sessionStarter(s);

describe("MCP results an agent can afford", () => {
  it("declares a valid outputSchema for every tool", () => {
    expect(tools.size).toBe(18);
    for (const tool of tools.values()) {
      expect(tool.outputSchema, tool.name).toMatchObject({ type: "object" });
      // Compiles (throws on a schema that is not valid JSON Schema).
      expect(typeof validator.getValidator(tool.outputSchema as JsonSchemaType), tool.name).toBe("function");
    }
    expect(tools.get("read_output")!.outputSchema!.properties).not.toHaveProperty("output");
    expect(tools.get("prompt_agent")!.outputSchema!.properties).not.toHaveProperty("answer");
  });

  // Regression: one page of 64 KiB was 65,696 characters, past Claude Code's 25,000 tokens, and
  // the output came twice (in the text and in structuredContent).
  it(
    "pages fit an agent's tool-result limit and carry the output once",
    async () => {
      // 200,000 bytes: lines of 99 digits and a line break, each line numbered.
      const script = `for (let i = 0; i < 2000; i++) process.stdout.write(String(i).padStart(6, "0") + "x".repeat(93) + "\\n"); setTimeout(() => {}, 60000)`;
      const id = await start([process.execPath, "-e", script]);
      const waited = checked(
        "wait_for_output",
        await raw("wait_for_output", { id, since: 0, pattern: "^001999x", timeout_ms: 30_000 }),
      );
      expect(waited.data.reason).toBe("matched");
      const results: CallToolResult[] = [];
      let since = 0;
      for (let more = true; more;) {
        const result = await raw("read_output", { id, since });
        const page = checked("read_output", result);
        expect(page.data.next - page.data.from).toBeLessThanOrEqual(DEFAULT_OUTPUT_BYTES);
        expect(page.body!.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_BYTES);
        results.push(result);
        since = page.data.next;
        more = page.data.more;
      }
      expect(results.length).toBe(Math.ceil(200_000 / DEFAULT_OUTPUT_BYTES));
      for (const result of results) {
        // Everything the client hands the model: even at one token a character it fits.
        const whole = JSON.stringify(result);
        expect(whole.length).toBeLessThan(DEFAULT_OUTPUT_BYTES + 1000);
        expect(whole.length).toBeLessThan(CLAUDE_CODE_RESULT_TOKENS);
        // Each line of the page once: in the output block, not again in structuredContent.
        const line = /\d{6}x{93}/.exec(whole)![0];
        expect(whole.split(line)).toHaveLength(2);
        expect(JSON.stringify(result.structuredContent)).not.toContain("xxxx");
      }
      // The last wait's output too: the latest DEFAULT_OUTPUT_BYTES at most, once.
      const latest = await raw("wait_for_output", { id, since: 0, timeout_ms: 0 });
      const wait = checked("wait_for_output", latest);
      expect(wait.body!.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_BYTES);
      expect(wait.body!.endsWith("001999" + "x".repeat(93) + "\n")).toBe(true);
      expect(JSON.stringify(latest.structuredContent)).not.toContain("xxxx");
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  it(
    "marks binary output and shows its bytes as \\xNN, never as U+FFFD, within the page's size",
    async () => {
      // Every byte value, 64 times: 16,384 bytes, half of them not UTF-8 wherever they stand.
      const script = `process.stdout.write(Buffer.from(Array.from({ length: 16384 }, (_, i) => i % 256))); setTimeout(() => {}, 60000)`;
      const id = await start([process.execPath, "-e", script]);
      await waitFor(async () => (await s.http.getSession(id)).outputBytes === 16_384, 20_000);
      const page = checked("read_output", await raw("read_output", { id, since: 0, raw: true }));
      expect(page.data).toMatchObject({ binary: true, from: 0 });
      expect(page.data.invalid_bytes).toBeGreaterThan(0);
      expect(page.header).toMatch(/\| binary: \d+ bytes are not UTF-8, shown as \\xNN \|/);
      expect(page.body).not.toContain("\ufffd");
      expect(page.body).toContain("\\x80\\x81\\x82");
      // Four characters a byte: the page takes fewer bytes so that it shows no more characters than usual.
      expect(page.body!.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_BYTES);
      expect(page.data.more).toBe(true);

      const waited = checked("wait_for_output", await raw("wait_for_output", { id, since: 0, timeout_ms: 0 }));
      expect(waited.data).toMatchObject({ binary: true, next: 16_384 });
      expect(waited.body).not.toContain("\ufffd");
      expect(waited.body!.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_BYTES);
      // Text stays text: the same tools on UTF-8 output say nothing of binary.
      const text = await start(["sh", "-c", "printf 'héllo €\\n'"]);
      const plain = checked("wait_for_output", await raw("wait_for_output", { id: text, since: 0, pattern: "€" }));
      expect(plain.data).not.toHaveProperty("binary");
      expect(plain.body).toBe("héllo €\n");
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  it(
    "read_screen shows a full-screen program's screen, cursor and title as text",
    async () => {
      const frame = "printf '\\033]2;tui\\007\\033[?1049h\\033[2J\\033[3;5Hhello screen\\033[1;1H'; sleep 30";
      const id = await start(["sh", "-c", `seq 1 500; ${frame}`], { pty: true, cols: 40, rows: 10 });
      await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "hello screen", timeout_ms: 20_000 });
      const read = checked("read_screen", await raw("read_screen", { id }));
      expect(read.body).toBe("\n\n    hello screen");
      expect(read.data).toMatchObject({ alternate: true, title: "tui", cols: 40, rows: 10, cursor: { x: 0, y: 0 } });
      expect(read.header).toContain("a full-screen program is showing");
      const narrow = checked("read_screen", await raw("read_screen", { id, cols: 10, rows: 4 }));
      expect(narrow.body).toBe("\n\n    hello");
    },
    TEST_MS,
  );

  // Regression: a pattern matched the PTY's echo of the typed command, not its output.
  it(
    "after_input matches only what follows the echo of the typed line in a PTY",
    async () => {
      const id = await start(["sh"], { pty: true, env: { PS1: "$ " } });
      await s.mcp.ok("wait_for_output", { id, since: 0, pattern: "\\$ $", timeout_ms: 20_000 });

      // With since alone, the echo "printf 'DONE-%s\n' 42" is what matches.
      const first = await s.mcp.ok("send_input", { id, text: "printf 'DONE-%s\\n' 42" });
      const echoed = await s.mcp.ok("wait_for_output", {
        id,
        since: first.data.output_offset,
        pattern: "DONE",
        timeout_ms: 20_000,
      });
      expect(echoed.output).toContain("printf");

      const second = await s.mcp.ok("send_input", { id, text: "printf 'DONE-%s\\n' 43" });
      const result = await raw("wait_for_output", { id, after_input: true, pattern: "DONE-\\d+", timeout_ms: 20_000 });
      const after = checked("wait_for_output", result);
      expect(after.data).toMatchObject({ reason: "matched", match: "DONE-43", echo_seen: true });
      expect(after.body).toBe("DONE-43\n");
      // It started after the echo's line: its start is past the input's offset.
      expect(after.data.start).toBeGreaterThan(second.data.output_offset);
      expect(after.data.match_line_offset).toBe(after.data.start);

      // A program with echo off shows no echo: the wait says so instead of matching.
      await s.mcp.ok("send_input", { id, text: "stty -echo; echo off; read x; echo got" });
      await s.mcp.ok("wait_for_output", { id, after_input: true, pattern: "^off", timeout_ms: 20_000 });
      await s.mcp.ok("send_input", { id, text: "secret" });
      const blind = checked(
        "wait_for_output",
        await raw("wait_for_output", { id, after_input: true, pattern: "nothing", timeout_ms: 300 }),
      );
      expect(blind.data).toMatchObject({ reason: "timeout", echo_seen: false });
      expect(blind.header).toContain("the echo of the input's line was not seen");
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  it(
    "after_input in a pipe session starts at the input (nothing echoes), and is refused without an input or with since",
    async () => {
      const id = await start(["sh", "-c", 'while read line; do echo "got $line"; done']);
      const none = await s.mcp.call("wait_for_output", { id, after_input: true });
      expect(none.code).toBe("VALIDATION_FAILED");
      expect(none.text).toContain("no send_input to");
      await s.mcp.ok("send_input", { id, text: "one" });
      const got = await s.mcp.ok("wait_for_output", { id, after_input: true, pattern: "got" });
      expect(got.output).toBe("got one\n");
      expect(got.data).not.toHaveProperty("echo_seen");
      const both = await s.mcp.call("wait_for_output", { id, after_input: true, since: 0 });
      expect(both.code).toBe("VALIDATION_FAILED");
      expect(both.text).toContain("give after_input or since, not both");
      await s.mcp.ok("stop_session", { id });
    },
    TEST_MS,
  );

  it("names tools, not HTTP routes, in errors", async () => {
    const agent = (await s.mcp.ok("create_agent_session", { agent: "echo" })).data.session.id as string;
    const refused = await s.mcp.call("send_input", { id: agent, text: "hi" });
    expect(refused.code).toBe("WRONG_SESSION_KIND");
    expect(refused.text).toContain("prompt_agent");
    expect(refused.text).not.toMatch(/POST|\/prompt|switchboard prompt/);
    // Errors carry no structured content: the client checks that against the results' schema.
    const result = await raw("send_input", { id: agent, text: "hi" });
    expect(result).toMatchObject({ isError: true });
    expect(result.structuredContent).toBeUndefined();
  });
});
