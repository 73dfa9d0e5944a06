import { describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { MAX_EXEC_STRING_BYTES } from "../../src/sessions/exec-limits.js";

/*
 * Commands the kernel's execve(2) would refuse with E2BIG although the protocol allows them
 * (an argument or env value of up to 256 KiB, `LIMITS.STRING_BYTES`): refused before anything
 * starts, with SPAWN_FAILED and what to do, in both modes alike. A PTY session used to start and
 * die at once (exit 1, output `execvp(3) failed.: Argument list too long`); a pipe session was
 * refused with only `cannot start sh: spawn E2BIG`.
 */

const MODES = [
  { name: "pipe", pty: false },
  { name: "pty", pty: true },
] as const;

type Ev = { seq: number; type: string; [k: string]: unknown };

describe.each(MODES)("a $name session with more than execve takes", ({ pty }) => {
  it("is refused with SPAWN_FAILED naming the variable or argument that is too long, and records nothing", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const long = "x".repeat(200_000);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [
        { command: ["sh", "-c", "echo ${#BIG}"], env: { BIG: long } },
        /environment variable BIG is 200004 bytes .*at most 131071 bytes in one \(E2BIG\); pass the value in a file/,
      ],
      [
        { command: ["echo", long] },
        /argument 1 of the command is 200000 bytes: .*at most 131071 bytes in one \(E2BIG\)/,
      ],
    ];
    for (const [body, message] of cases) {
      const r = await http.post("/v1/sessions", { ...body, pty });
      expect(r.status, r.text.slice(0, 300)).toBe(422);
      expect(r.json.error.code).toBe("SPAWN_FAILED");
      expect(r.json.error.message).toMatch(message);
    }
    expect((await http.get("/v1/sessions")).json.sessions).toEqual([]);
  });

  it("starts one whose variable is exactly as long as execve takes", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    // "BIG=" and the value, and the NUL the kernel counts too.
    const value = "y".repeat(MAX_EXEC_STRING_BYTES - 1 - "BIG=".length);
    const r = await http.post("/v1/sessions", { command: ["sh", "-c", "echo ${#BIG}"], env: { BIG: value }, pty });
    expect(r.status, r.text.slice(0, 300)).toBe(201);
    const evs = await waitFor(
      async () => {
        const e = (await http.get(`/v1/sessions/${r.json.id}/events`)).json.events as Ev[];
        return e.some((x) => x.type === "exit") ? e : undefined;
      },
      10_000,
      "exit",
    );
    expect(evs.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });
    expect((await http.get(`/v1/sessions/${r.json.id}/output`)).text.trim()).toBe(String(value.length));
  });

  it("is refused when the environment is too large as a whole, saying so", async () => {
    // Bodies of up to 8 MiB: more environment than a quarter of the 8 MiB stack limit (2 MiB).
    const gw = await testGateway({ config: { limits: { bodyBytes: 8 * 1024 * 1024 } } });
    const http = api(gw.url);
    const env = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`V${i}`, "z".repeat(100_000)]));
    const r = await http.post("/v1/sessions", { command: ["true"], env, pty });
    expect(r.status, r.text.slice(0, 300)).toBe(422);
    expect(r.json.error.code).toBe("SPAWN_FAILED");
    expect(r.json.error.message).toMatch(/the command and its environment are \d+ bytes together: .*\(E2BIG/);
    expect((await http.get("/v1/sessions")).json.sessions).toEqual([]);
  });
});

describe("a PTY session's TERM", () => {
  it("is the one the caller asked for, else xterm-256color, never the gateway's own", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const saved = process.env["TERM"];
    // The gateway was started from some terminal (tmux, a console): its TERM is not what viewers emulate.
    process.env["TERM"] = "screen";
    try {
      const term = async (body: Record<string, unknown>): Promise<string> => {
        const r = await http.post("/v1/sessions", { command: ["sh", "-c", "echo term=$TERM"], ...body });
        expect(r.status, r.text).toBe(201);
        return waitFor(
          async () => /term=(\S*)\r?\n/.exec((await http.get(`/v1/sessions/${r.json.id}/output`)).text)?.[1],
          10_000,
          "TERM",
        );
      };
      expect(await term({ pty: true, env: { TERM: "dumb" } })).toBe("dumb");
      expect(await term({ pty: true })).toBe("xterm-256color");
      expect(await term({ pty: true, env: { LANG: "C.UTF-8" } })).toBe("xterm-256color");
      // Pipes are no terminal: the caller's, or whatever the gateway has.
      expect(await term({ env: { TERM: "dumb" } })).toBe("dumb");
    } finally {
      if (saved === undefined) delete process.env["TERM"];
      else process.env["TERM"] = saved;
    }
  });
});
