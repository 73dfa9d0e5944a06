/**
 * An agent whose answer goes on only when the test says so: the scripted ACP agent's `steps` op
 * (test/agents/fixtures/scripted-agent.mjs), held at each "wait" until the test releases it
 * through a gate, a socket on 127.0.0.1. A test looks at the page mid-answer for as long as it
 * needs, however loaded the machine, instead of streaming for seconds and hoping.
 */
import { createServer } from "node:net";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { expect, onTestFinished } from "vitest";
import type { Stack } from "./ui-helpers.js";

/** The scripted ACP agent (its ops are listed at the top of the file). */
export const SCRIPTED_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));

/** The config entry of the held agent: `stack({ agents: { held: HELD_AGENT } })`. */
export const HELD_AGENT = { adapter: "acp" as const, command: [process.execPath, SCRIPTED_AGENT] };

/** A session of the held agent, on a stack configured with {@link HELD_AGENT} as `held`. */
export async function createHeldAgent(http: Stack["http"], name: string): Promise<string> {
  const res = await http.post("/v1/sessions", { kind: "agent", agent: "held", name });
  expect(res.status).toBe(201);
  return res.json.id as string;
}

/** One step of a held answer: say text, think, show a tool call, or wait for {@link Gate.release}. */
export type Step = { say: string } | { think: string } | { tool: string } | "wait";

export interface Gate {
  /** The prompt that runs `steps`, each "wait" held by this gate. */
  prompt(steps: Step[]): string;
  /** Lets the agent past its next "wait" (also before it got there). */
  release(): void;
}

/** A gate for one prompt's steps, closed after the test. */
export async function openGate(): Promise<Gate> {
  let socket: Socket | undefined;
  let early = 0;
  const server = createServer((s) => {
    socket = s;
    s.write("\n".repeat(early));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(async () => {
    socket?.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as { port: number };
  return {
    prompt: (steps) => JSON.stringify({ op: "steps", gate: port, steps }),
    release() {
      if (socket) socket.write("\n");
      else early++;
    },
  };
}
