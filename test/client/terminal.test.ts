import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HttpClient, SwitchboardError, TerminalClient, connect } from "../../src/client/node.js";
import { LIMITS } from "../../src/protocol/index.js";
import type { ConnectionState } from "../../src/client/node.js";
import { TEST_ENV, startTestGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

let gw: TestGateway;
let http: HttpClient;
const open: TerminalClient[] = [];
beforeAll(async () => {
  gw = await startTestGateway();
  http = new HttpClient({ url: gw.url, token: gw.token });
});
afterEach(() => {
  for (const t of open.splice(0)) t.close();
});
afterAll(async () => {
  await gw.close();
});

function terminal(session: string, since?: number): { term: TerminalClient; text: () => string } {
  const term = new TerminalClient({ url: gw.url, token: gw.token, session, ...(since !== undefined ? { since } : {}) });
  open.push(term);
  const chunks: Buffer[] = [];
  term.on("data", ({ bytes }) => chunks.push(Buffer.from(bytes)));
  return { term, text: () => Buffer.concat(chunks).toString("utf8") };
}

describe("TerminalClient (/ws/session/:id)", () => {
  it("replays from a byte offset, then streams live output, then the exit", async () => {
    const s = await http.createSession({
      command: ["sh", "-c", "printf 'abcdef'; read x; printf \"[$x]\"; exit 4"],
      env: TEST_ENV,
    });
    await waitFor(async () => (await http.getSession(s.id)).outputBytes === 6);
    const { term, text } = terminal(s.id, 2);
    await waitFor(() => text() === "cdef", 3_000, "replay");
    expect(term.offset).toBe(6);
    expect(term.mode).toBe("pipe");
    await http.input(s.id, "hi\n");
    await expect(term.done).resolves.toEqual({ exitCode: 4, signal: null, state: "exited" });
    expect(text()).toBe("cdef[hi]");
  });

  it.each(["binary", "json"] as const)(
    "delivers the exact bytes in %s output mode: invalid UTF-8, characters cut between writes, stderr",
    async (output) => {
      // "é" written in two halves, a lone 0xff, and stderr in between. Each write waits until the
      // one before it has arrived: the order of writes to two pipes is not kept when the gateway
      // finds both ready at once (after sleeps instead, under load "z" once came before "err").
      const script = "printf 'a\\303'; read x; printf '\\251\\377'; read x; printf 'err' >&2; read x; printf 'z'";
      const s = await http.createSession({ command: ["sh", "-c", script], env: TEST_ENV });
      await waitFor(async () => (await http.getSession(s.id)).outputBytes > 0, 5_000);
      const term = new TerminalClient({ url: gw.url, token: gw.token, session: s.id, since: 0, output });
      open.push(term);
      const got: Array<{ kind: string; offset: number; bytes: number[] }> = [];
      term.on("data", ({ kind, offset, bytes }) => got.push({ kind, offset, bytes: [...bytes] }));
      // Bytes arrived on stderr, or on stdout (replayed from before the client came, or live).
      const arrived = (stderr: boolean) =>
        got.filter((d) => (d.kind === "stderr") === stderr).flatMap((d) => d.bytes).length;
      // Only the "a" may come before the rest of the "é" (a gateway may hold back a cut character).
      await waitFor(() => arrived(false) >= 1, 10_000, "the first write");
      await http.input(s.id, "\n");
      await waitFor(() => arrived(false) === 4, 10_000, "the second write");
      await http.input(s.id, "\n");
      await waitFor(() => arrived(true) === 3, 10_000, "stderr");
      await http.input(s.id, "\n");
      await expect(term.done).resolves.toEqual({ exitCode: 0, signal: null, state: "exited" });
      const all = got.flatMap((d) => d.bytes);
      expect(Buffer.from(all)).toEqual(Buffer.from([0x61, 0xc3, 0xa9, 0xff, ...Buffer.from("err"), 0x7a]));
      // Offsets are contiguous, and stderr is told apart from stdout.
      let at = 0;
      for (const d of got) {
        expect(d.offset).toBe(at);
        at += d.bytes.length;
      }
      expect(got.filter((d) => d.kind === "stderr").flatMap((d) => d.bytes)).toEqual([...Buffer.from("err")]);
    },
  );

  it("without since, shows only new output", async () => {
    const s = await http.createSession({ command: ["sh", "-c", "printf old; read x; printf new"], env: TEST_ENV });
    await waitFor(async () => (await http.getSession(s.id)).outputBytes === 3);
    const { term, text } = terminal(s.id);
    await waitFor(() => term.state === "open", 3_000, "open");
    await http.input(s.id, "\n");
    await term.done;
    expect(text()).toBe("new");
  });

  it("replays an ended session and resolves with its exit", async () => {
    const s = await http.createSession({ command: ["sh", "-c", "echo done; kill -TERM $$"], env: TEST_ENV });
    await waitFor(async () => (await http.getSession(s.id)).state === "exited");
    const { term, text } = terminal(s.id, 0);
    await expect(term.done).resolves.toEqual({ exitCode: null, signal: "SIGTERM", state: "exited" });
    expect(text()).toBe("done\n");
  });

  it("tells a lost session from one that exited, live and after the fact", async () => {
    const s = await http.createSession({ kind: "stream", name: "producer" });
    await http.appendEvents(s.id, { type: "output", data: { data: "partial" } });
    const live = terminal(s.id, 0);
    await waitFor(() => live.text() === "partial", 10_000, "the replay");
    // What the gateway does to a session whose process it lost (a crash under it).
    gw.gateway.core.sessions.get(s.id)!.markLost("the producer went away");
    await expect(live.term.done).resolves.toEqual({ exitCode: null, signal: null, state: "lost" });
    const later = terminal(s.id, 0);
    await expect(later.term.done).resolves.toEqual({ exitCode: null, signal: null, state: "lost" });
    expect(later.text()).toBe("partial");
  });

  it("sends stdin and reports refusals (CONTROL_HELD) as typed error events", async () => {
    const s = await http.createSession({ command: ["cat"], env: TEST_ENV });
    const { term, text } = terminal(s.id, 0);
    const errors: SwitchboardError[] = [];
    term.on("error", (e) => errors.push(e));
    await waitFor(() => term.state === "open", 3_000, "open");
    expect(term.write("one\n")).toBe(true);
    await waitFor(() => text() === "one\n", 3_000, "echo");
    const holder = await connect({ url: gw.url, token: gw.token });
    await holder.control(s.id, "acquire");
    term.write("two\n");
    await waitFor(() => errors.length === 1, 3_000, "error");
    expect(errors[0]).toBeInstanceOf(SwitchboardError);
    expect(errors[0]!.code).toBe("CONTROL_HELD");
    holder.close();
    await http.deleteSession(s.id);
    await term.done;
  });

  it("writes binary messages to a gateway whose connected frame says it takes them, stdin frames to one that does not", async () => {
    for (const binaryInput of [true, false]) {
      const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      await new Promise<void>((resolve) => wss.once("listening", resolve));
      const got: Array<{ binary: boolean; text: string }> = [];
      wss.on("connection", (ws) => {
        ws.on("message", (raw: Buffer, binary) => got.push({ binary, text: raw.toString() }));
        const connected = { type: "connected", mode: "pty", session_id: "s", offset: 0 };
        ws.send(JSON.stringify(binaryInput ? { ...connected, binary_input: true } : connected));
      });
      const { port } = wss.address() as AddressInfo;
      const term = new TerminalClient({ url: `http://127.0.0.1:${port}`, token: "t", session: "s", since: 0 });
      open.push(term);
      try {
        await waitFor(() => term.state === "open", 3_000, "open");
        expect(term.write("é\r")).toBe(true);
        await waitFor(() => got.length === 1, 3_000, "the input");
        expect(got[0]).toEqual(
          binaryInput
            ? { binary: true, text: "é\r" }
            : { binary: false, text: JSON.stringify({ type: "stdin", data: "é\r" }) },
        );
      } finally {
        term.close();
        for (const client of wss.clients) client.terminate();
        await new Promise((resolve) => wss.close(resolve));
      }
    }
  });

  // Regression (exploratory testing): a write over the frame limit (1 MiB) returned true, the
  // gateway closed the socket (1009) and the client reconnected: the input was lost, no error.
  it("refuses a write over the input limit with PAYLOAD_TOO_LARGE and stays connected", async () => {
    const s = await http.createSession({ command: ["cat"], env: TEST_ENV });
    const { term, text } = terminal(s.id, 0);
    const errors: SwitchboardError[] = [];
    term.on("error", (e) => errors.push(e));
    const states: ConnectionState[] = [];
    await waitFor(() => term.state === "open", 3_000, "open");
    term.on("state", ({ state }) => states.push(state));
    for (const size of [LIMITS.INPUT_BYTES + 1, 300_000, 2 * 1024 * 1024]) {
      expect(term.write("x".repeat(size))).toBe(false);
      expect(errors.at(-1)).toMatchObject({
        code: "PAYLOAD_TOO_LARGE",
        message: `input is ${size} bytes; at most ${LIMITS.INPUT_BYTES} per message`,
      });
    }
    expect(errors).toHaveLength(3);
    expect(term.write("é".repeat(LIMITS.INPUT_BYTES / 2))).toBe(true);
    expect(term.write("after\n")).toBe(true);
    await waitFor(() => text().endsWith("after\n"), 3_000, "echo");
    expect(Buffer.byteLength(text())).toBe(LIMITS.INPUT_BYTES + 6);
    expect(states).toEqual([]);
    await http.deleteSession(s.id);
    await term.done;
  });

  it("fails with SESSION_NOT_FOUND and UNAUTHORIZED", async () => {
    const missing = new TerminalClient({ url: gw.url, token: gw.token, session: "nope" });
    await expect(missing.done).rejects.toMatchObject({ code: "SESSION_NOT_FOUND" });
    const s = await http.createSession({ kind: "stream" });
    const bad = new TerminalClient({ url: gw.url, token: "bad-token-0123456789", session: s.id });
    await expect(bad.done).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  // Regression (CLI audit): a refused upgrade was diagnosed with a probe that succeeded, so the
  // client said "connection lost; reconnecting" and then blamed a proxy (BAD_RESPONSE).
  it("fails at once with the gateway's own refusal (since past the end), without reconnecting", async () => {
    const s = await http.createSession({ command: ["printf", "abcdef"], env: TEST_ENV });
    await waitFor(async () => (await http.getSession(s.id)).state === "exited");
    const { term } = terminal(s.id, 99_999);
    const states: ConnectionState[] = [];
    term.on("state", ({ state }) => states.push(state));
    await expect(term.done).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: "since=99999 is past the end of the output (6 bytes)",
    });
    expect(states).toEqual(["closed"]);
  });

  it("does not retry a connection limit (429 LIMIT_EXCEEDED)", async () => {
    const limited = await startTestGateway({ config: { limits: { connectionsPerToken: 1 } } });
    try {
      const s = await new HttpClient({ url: limited.url, token: limited.token }).createSession({ kind: "stream" });
      const first = new TerminalClient({ url: limited.url, token: limited.token, session: s.id });
      open.push(first);
      await waitFor(() => first.state === "open", 3_000, "first open");
      const second = new TerminalClient({ url: limited.url, token: limited.token, session: s.id });
      open.push(second);
      const states: ConnectionState[] = [];
      second.on("state", ({ state }) => states.push(state));
      await expect(second.done).rejects.toMatchObject({
        code: "LIMIT_EXCEEDED",
        message: expect.stringMatching(/has 1 connections open \(limits\.connectionsPerToken\)/),
      });
      expect(states).toEqual(["closed"]);
    } finally {
      await limited.close();
    }
  });
});
