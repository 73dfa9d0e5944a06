/**
 * The client commands that drive an agent session's runs: `prompt` (and `prompt --wait`), `abort`,
 * `permission`, `elicit`, `mode` and `config` (the agent's mode and settings), and `resume` for a
 * session lost with its gateway or agent.
 */
import { connect } from "../client/node.js";
import type { AgentState, ContentBlock, PromptRequest, SessionEvent } from "../client/node.js";
import { positional, runCommand, writeJson } from "./context.js";
import { sessionOperand } from "./session-ref.js";
import type { CliContext } from "./context.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { interruption } from "./follow.js";
import { fileBlock, imageBlock, linkBlock } from "./prompt-files.js";
import { Transcript } from "./transcript.js";
import type { Command } from "./commands.js";

export const PROMPT_USAGE = `Usage: switchboard prompt ID [-w] [--image FILE]... [--file FILE]... [--link URI]... [TEXT...]

Queues a prompt on an agent session and prints the run id (options go before TEXT: from its
first word on, everything is the prompt). With -w (--wait), prints the
answer instead as it streams, with tool calls and permission requests on stderr, and exits
when the run ends: 0 when it finished, 1 when it failed or was aborted.

--image FILE sends a PNG, JPEG, GIF or WebP image, --file FILE a file's contents (an embedded
resource), --link URI a link the agent reads itself; each may be given more than once, in that
order after TEXT. A file is at most 5 MiB; an agent that does not take images or files
(its ACP promptCapabilities) is refused with UNSUPPORTED_CONTENT before anything is sent.`;

export const ABORT_USAGE = `Usage: switchboard abort ID [--all]

Stops the active run of an agent session (it ends with chat.aborted; the agent is told to
stop) and prints its run id; --all also drops the prompts queued behind it. Exit code 1 when
nothing runs.`;

export const PERMISSION_USAGE = `Usage: switchboard permission ID REQUEST OPTION

Answers an agent's permission request: REQUEST is its id and OPTION the id of one of the
options it offered (both are in the request's line of prompt -w and logs -f, and in its
permission.request event). The first valid answer wins; a request already answered, cancelled
or timed out is refused (PERMISSION_REQUEST_NOT_FOUND).`;

export const MODE_USAGE = `Usage: switchboard mode ID [MODE]

Switches an agent session's agent to one of the modes it offers (ACP session/set_mode) and
prints the mode once the agent confirmed it. Without MODE, lists its modes, the current one
marked *. A mode it does not offer is refused naming those it does (INVALID_OPTION), and nothing
is sent; an agent not started yet is started first. Steers the agent: refused while someone
else holds control (CONTROL_HELD).`;

export const CONFIG_USAGE = `Usage: switchboard config ID [KEY VALUE]

Sets one of an agent session's settings (ACP session/set_config_option) to one of its values
and prints it once the agent confirmed; the model is the setting of category model
(switchboard config ID model VALUE). A boolean setting takes true or false. Without KEY VALUE,
lists its settings, their values and the current one marked *. Refused as switchboard mode is.`;
export const ELICIT_USAGE = `Usage: switchboard elicit ID REQUEST accept|decline|cancel [CONTENT]

Answers an agent's elicitation (a form it asks to be filled in, or a page to visit: its
elicitation.request event has the request id, message, and requestedSchema or url). With a
form's accept, CONTENT is a JSON object of the form's fields, e.g. '{"db":"pg","port":5432}';
an answer that does not match the form is refused (ELICITATION_CONTENT_INVALID names the field)
and the elicitation stays open. A url elicitation is accepted, once the page is done, without
CONTENT. The first valid answer wins; one already answered, cancelled or timed out is refused
(ELICITATION_NOT_FOUND).`;

export const RESUME_USAGE = `Usage: switchboard resume ID

Starts the agent of a lost agent session again (its gateway or its agent died) and prints
whether it reloaded the conversation: an agent that offers ACP session/load goes on where it
was; one that does not is refused (AGENT_CANNOT_RESUME, exit code 1) unless it never
answered, and the session stays lost. A running or stopped session is refused the same way.`;

export const prompt: Command = (argv) =>
  runCommand(
    argv,
    {
      usage: PROMPT_USAGE,
      options: {
        wait: { type: "boolean", short: "w" },
        image: { type: "string", multiple: true },
        file: { type: "string", multiple: true },
        link: { type: "string", multiple: true },
      },
      operandsAfter: 1,
    },
    async (ctx, parsed) => {
      positional(parsed, 0, "the session id or name");
      const text = parsed.positionals.slice(1).join(" ");
      const content: ContentBlock[] = [
        ...(await Promise.all((parsed.values.image ?? []).map(imageBlock))),
        ...(await Promise.all((parsed.values.file ?? []).map(fileBlock))),
        ...(parsed.values.link ?? []).map(linkBlock),
      ];
      if (text.length === 0 && content.length === 0) throw new UsageError("missing TEXT (or --image, --file, --link)");
      const prompt: string | PromptRequest =
        content.length === 0 ? text : { ...(text.length > 0 ? { text } : {}), content };
      const id = await sessionOperand(ctx, parsed);
      const client = await connect(ctx.target);
      try {
        if (parsed.values.wait === true) return await promptAndWait(ctx, client, id, prompt);
        const result = await client.prompt(id, prompt);
        if (ctx.json) writeJson(ctx, result);
        else ctx.out.write(`${result.runId}\n`);
        return EXIT.OK;
      } finally {
        client.close();
      }
    },
  );

export const abort: Command = (argv) =>
  runCommand(argv, { usage: ABORT_USAGE, options: { all: { type: "boolean" } } }, async (ctx, parsed) => {
    const id = await sessionOperand(ctx, parsed);
    const result = await ctx.http.abort(id, { all: parsed.values.all === true });
    if (ctx.json) writeJson(ctx, result);
    else {
      // With --all, the queue may have been all there was: no run was active.
      if (result.runId !== null) ctx.out.write(`${result.runId}\n`);
      if (result.cleared > 0)
        ctx.err.write(`dropped ${result.cleared} queued prompt${result.cleared === 1 ? "" : "s"}\n`);
    }
    return EXIT.OK;
  });

export const permission: Command = (argv) =>
  runCommand(argv, { usage: PERMISSION_USAGE, options: {}, positionals: 3 }, async (ctx, parsed) => {
    const requestId = positional(parsed, 1, "the request id");
    const optionId = positional(parsed, 2, "the option id");
    const id = await sessionOperand(ctx, parsed);
    const result = await ctx.http.permission(id, requestId, optionId);
    if (ctx.json) writeJson(ctx, result);
    return EXIT.OK;
  });

export const mode: Command = (argv) =>
  runCommand(argv, { usage: MODE_USAGE, options: {}, positionals: 2 }, async (ctx, parsed) => {
    const id = await sessionOperand(ctx, parsed);
    const modeId = parsed.positionals[1];
    if (modeId === undefined) {
      const state = (await ctx.http.getSession(id)).agentState;
      if (ctx.json) writeJson(ctx, state?.modes ?? null);
      else ctx.out.write(modeLines(state));
      return EXIT.OK;
    }
    const { agentState } = await ctx.http.setMode(id, modeId);
    if (ctx.json) writeJson(ctx, agentState);
    else ctx.out.write(`${agentState?.modes?.currentModeId ?? modeId}\n`);
    return EXIT.OK;
  });

export const config: Command = (argv) =>
  runCommand(argv, { usage: CONFIG_USAGE, options: {}, positionals: 3 }, async (ctx, parsed) => {
    const [, configId, value] = parsed.positionals;
    if (configId === undefined) {
      const state = (await ctx.http.getSession(await sessionOperand(ctx, parsed))).agentState;
      if (ctx.json) writeJson(ctx, state?.configOptions ?? null);
      else ctx.out.write(configLines(state));
      return EXIT.OK;
    }
    if (value === undefined) throw new UsageError("missing VALUE");
    const id = await sessionOperand(ctx, parsed);
    // A boolean setting takes true/false as a boolean; the agent's state says which settings are.
    const state = (await ctx.http.getSession(id)).agentState;
    const option = state?.configOptions?.find((o) => o.id === configId);
    const chosen = option?.type === "boolean" && (value === "true" || value === "false") ? value === "true" : value;
    const { agentState } = await ctx.http.setConfig(id, configId, chosen);
    if (ctx.json) writeJson(ctx, agentState);
    else {
      const now = agentState?.configOptions?.find((o) => o.id === configId)?.currentValue ?? chosen;
      ctx.out.write(`${configId} ${String(now)}\n`);
    }
    return EXIT.OK;
  });

/** `mode ID`: one line per mode, `* ` before the current one. */
function modeLines(state: AgentState | undefined): string {
  const modes = state?.modes;
  if (modes === undefined || modes.availableModes.length === 0) return "the agent has said of no modes (yet)\n";
  return modes.availableModes
    .map(
      (m) =>
        `${m.id === modes.currentModeId ? "*" : " "} ${m.id}\t${m.name}${m.description ? ` - ${m.description}` : ""}\n`,
    )
    .join("");
}

/** `config ID`: one line per setting, its values after it, `*` before the current one. */
function configLines(state: AgentState | undefined): string {
  const options = state?.configOptions ?? [];
  if (options.length === 0) return "the agent has said of no settings (yet)\n";
  return options
    .map((o) => {
      const values =
        o.type === "boolean"
          ? [true, false].map((v) => `${o.currentValue === v ? "*" : ""}${String(v)}`)
          : (o.options ?? []).map((v) => `${o.currentValue === v.value ? "*" : ""}${v.value}`);
      return `${o.id}\t${o.name}: ${values.join(" ")}\n`;
    })
    .join("");
}

const ELICIT_ACTIONS = ["accept", "decline", "cancel"] as const;

export const elicit: Command = (argv) =>
  runCommand(argv, { usage: ELICIT_USAGE, options: {}, positionals: 4 }, async (ctx, parsed) => {
    const requestId = positional(parsed, 1, "the request id");
    const action = positional(parsed, 2, "the action (accept, decline or cancel)");
    if (!(ELICIT_ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`the action must be accept, decline or cancel, not ${JSON.stringify(action)}`);
    }
    const raw = parsed.positionals[3];
    let content: Record<string, unknown> | undefined;
    if (raw !== undefined) {
      if (action !== "accept") throw new UsageError("CONTENT goes only with accept");
      try {
        content = JSON.parse(raw) as Record<string, unknown>;
      } catch (error) {
        throw new UsageError(`CONTENT is not JSON: ${(error as Error).message}`);
      }
      if (content === null || typeof content !== "object" || Array.isArray(content)) {
        throw new UsageError("CONTENT must be a JSON object of the form's fields");
      }
    }
    const id = await sessionOperand(ctx, parsed);
    const result = await ctx.http.elicitation(id, requestId, action as (typeof ELICIT_ACTIONS)[number], content);
    if (ctx.json) writeJson(ctx, result);
    return EXIT.OK;
  });

export const resume: Command = (argv) =>
  runCommand(argv, { usage: RESUME_USAGE, options: {}, positionals: 1 }, async (ctx, parsed) => {
    const id = await sessionOperand(ctx, parsed);
    const info = await ctx.http.resume(id);
    if (ctx.json) writeJson(ctx, info);
    else {
      // The resumed event says whether the agent reloaded the conversation.
      const resumed = (await ctx.http.events(id, { types: ["resumed"] })).events.at(-1);
      const loaded = resumed !== undefined && "loaded" in resumed && resumed.loaded === true;
      ctx.out.write(`${id} is running again${loaded ? ", its conversation reloaded" : ", with a new conversation"}\n`);
    }
    return EXIT.OK;
  });

/**
 * `prompt --wait`: queues the prompt and follows the session from before it, so nothing of
 * the run is missed, until the run's end. The answer goes to stdout as it streams (with
 * --json, the run's events instead), everything else to stderr.
 */
async function promptAndWait(
  ctx: CliContext,
  client: Awaited<ReturnType<typeof connect>>,
  id: string,
  prompt: string | PromptRequest,
): Promise<number> {
  const { head, run } = await ctx.http.getSession(id);
  const { runId } = await client.prompt(id, prompt);
  // On a terminal, a note should not land in the middle of the answer's line; in a file the
  // answer stays exactly what the agent said.
  const sameScreen = process.stdout.isTTY && process.stderr.isTTY;
  const transcript = new Transcript(
    {
      text: (chunk) => {
        if (!ctx.json) ctx.out.write(chunk);
      },
      note: (line, midLine) => process.stderr.write(`${midLine && sameScreen ? "\n" : ""}${line}\n`),
    },
    { runId, notesApart: true, sessionId: id },
  );
  // The run ahead of this one, as far as the events since `head` tell: `run.queued` counts only
  // the prompts waiting, not the active run.
  let active = run?.active ?? null;
  const note = (line: string) => process.stderr.write(`${line}\n`);
  const interrupted = interruption();
  let settle: (code: number) => void = () => undefined;
  const ended = new Promise<number>((resolve) => (settle = resolve));
  const sub = client.subscribe(id, { since: head }, (event: SessionEvent) => {
    if (ctx.json && "runId" in event && event.runId === runId) writeJson(ctx, event);
    if (event.type === "run.started") active = event.runId;
    else if (RUN_ENDS.has(event.type) && "runId" in event && event.runId === active) active = null;
    else if (event.type === "run.queued" && event.runId === runId) {
      const ahead = event.position + (active !== null ? 1 : 0);
      if (ahead > 0) {
        const waiting = active !== null && run?.active === active && run.activity === "waiting";
        note(
          `[queued behind ${ahead} run${ahead > 1 ? "s" : ""}${waiting ? "; the active one waits for a permission answer" : ""}]`,
        );
      }
    }
    const end = transcript.push(event);
    if (end) settle(end.type === "chat.final" ? EXIT.OK : EXIT.FAILURE);
  });
  try {
    const code = await Promise.race([
      ended,
      // The session ended (or the subscription failed) before the run did.
      sub.done.then(() => EXIT.FAILURE),
      interrupted.promise,
    ]);
    // Ctrl-C stops the waiting, not the agent (exploratory test: people expected it to).
    if (code === EXIT.INTERRUPTED)
      note(`${process.stderr.isTTY ? "\n" : ""}the run goes on; switchboard abort ${id} stops it`);
    return code;
  } finally {
    interrupted.dispose();
  }
}

const RUN_ENDS = new Set<SessionEvent["type"]>(["chat.final", "chat.error", "chat.aborted"]);
