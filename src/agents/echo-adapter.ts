import type { Clock } from "../core/clock.js";
import type { AdapterContext, AdapterRun, AgentAdapter, PermissionOption, RunOutcome } from "./adapter.js";
import { clockDelay } from "./clock-delay.js";
import { TEXT_ONLY } from "../protocol/index.js";

/** The echo agent streams its answer in pieces of this many characters (code points)… */
export const ECHO_CHUNK_CHARS = 6;
/** …one piece every this many milliseconds, so streaming is visible at once. */
export const ECHO_CHUNK_DELAY_MS = 30;
/** Pause around the echo agent's demo tool calls and plan steps. */
export const ECHO_STEP_DELAY_MS = 200;

/** The echo agent's tricks: a prompt starting with `/name` demonstrates one event kind. */
export const ECHO_COMMANDS = ["tool", "permission", "plan", "think", "fail"] as const;
export type EchoCommand = (typeof ECHO_COMMANDS)[number];

const PERMISSION_OPTIONS: PermissionOption[] = [
  { optionId: "allow", name: "Allow", kind: "allow_once" },
  { optionId: "reject", name: "Reject", kind: "reject_once" },
];

/** Splits `/tool rest of text` into the trick and the text to echo; other prompts are echoed whole. */
export function parseEchoPrompt(text: string): { command: EchoCommand | null; rest: string } {
  const m = /^\/([a-z]+)(?:\s+([\s\S]*))?$/.exec(text);
  const name = m?.[1];
  if (m && name !== undefined && (ECHO_COMMANDS as readonly string[]).includes(name)) {
    return { command: name as EchoCommand, rest: m[2] ?? "" };
  }
  return { command: null, rest: text };
}

/**
 * The built-in agent: no process, no keys. It streams the prompt back in small pieces; a
 * prompt starting with `/tool`, `/permission`, `/plan`, `/think` or `/fail` also shows a tool
 * call, a permission request, a plan, thoughts or an error (docs/agents.md).
 */
export class EchoAdapter implements AgentAdapter {
  readonly dead = false;
  /** It is given the prompt as text: images, audio and embedded files are refused before they queue. */
  readonly promptCapabilities = TEXT_ONLY;
  private readonly clock: Clock;
  private toolCalls = 0;

  constructor(context: Pick<AdapterContext, "clock">) {
    this.clock = context.clock;
  }

  async run(run: AdapterRun): Promise<RunOutcome> {
    const { command, rest } = parseEchoPrompt(run.text);
    const { sink, signal } = run;
    const cancelled: RunOutcome = { kind: "final", stopReason: "cancelled" };
    const pause = (ms: number): Promise<boolean> => clockDelay(this.clock, ms, signal);
    const stream = async (text: string, to: (chunk: string) => void): Promise<boolean> => {
      const chars = Array.from(text);
      for (let i = 0; i < chars.length; i += ECHO_CHUNK_CHARS) {
        if (!(await pause(ECHO_CHUNK_DELAY_MS))) return false;
        to(chars.slice(i, i + ECHO_CHUNK_CHARS).join(""));
      }
      return true;
    };
    const say = (text: string): Promise<boolean> => stream(text, (c) => sink.text(c));

    switch (command) {
      case null:
        break;
      case "think":
        if (!(await stream(`Thinking about ${JSON.stringify(rest)}…`, (c) => sink.thought(c)))) return cancelled;
        break;
      case "tool": {
        const toolCallId = `echo-tool-${++this.toolCalls}`;
        sink.tool({
          toolCallId,
          title: "Count characters",
          kind: "other",
          status: "in_progress",
          rawInput: { text: rest },
        });
        if (!(await pause(ECHO_STEP_DELAY_MS))) return cancelled;
        sink.tool({ toolCallId, status: "completed", rawOutput: { characters: Array.from(rest).length } });
        break;
      }
      case "permission": {
        const toolCallId = `echo-tool-${++this.toolCalls}`;
        sink.tool({ toolCallId, title: "Pretend to edit a file", kind: "edit", status: "pending" });
        const answer = await sink.requestPermission({
          title: "Allow the echo agent to pretend to edit a file?",
          toolCallId,
          options: PERMISSION_OPTIONS,
        });
        if (signal.aborted) return cancelled;
        const allowed = answer.outcome === "selected" && answer.optionId === "allow";
        sink.tool({ toolCallId, status: allowed ? "completed" : "failed" });
        const verdict = answer.outcome === "cancelled" ? "Permission cancelled." : allowed ? "Allowed." : "Rejected.";
        if (!(await say(rest === "" ? verdict : `${verdict} `))) return cancelled;
        break;
      }
      case "plan": {
        const steps = rest
          .split(";")
          .map((s) => s.trim())
          .filter((s) => s !== "");
        const entries = (steps.length > 0 ? steps : ["Read the prompt", "Echo it back"]).map((content) => ({
          content,
          priority: "medium",
          status: "pending",
        }));
        sink.plan(entries.map((e) => ({ ...e })));
        for (const entry of entries) {
          if (!(await pause(ECHO_STEP_DELAY_MS))) return cancelled;
          entry.status = "completed";
          sink.plan(entries.map((e) => ({ ...e })));
        }
        break;
      }
      case "fail":
        if (!(await say(rest))) return cancelled;
        return { kind: "error", code: "AGENT_FAILED", message: "the echo agent failed on purpose (/fail)" };
    }
    if (!(await say(rest))) return cancelled;
    return { kind: "final", stopReason: "end_turn" };
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}
