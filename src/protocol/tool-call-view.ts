import type { PermissionToolCall } from "./events.js";

/**
 * What a person approving a tool call needs to see, read from the agent's own description of it
 * (`permission.request.toolCall`): the shell command and the file diffs. Agents name things
 * differently (Claude Code `rawInput.command`, Codex an argv under `command`, Gemini `command` too),
 * so each is looked for in the shapes they send; what does not fit is left out, never guessed.
 */
export interface ToolCallDiff {
  path: string;
  /** Null or absent for a new file. */
  oldText: string | null;
  newText: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The shell command of the call, or undefined: `bash -lc CMD` argv shows as CMD. */
export function toolCallCommand(call: PermissionToolCall | undefined): string | undefined {
  const input = call?.rawInput;
  if (!isRecord(input)) return undefined;
  const command = input.command ?? input.cmd;
  if (typeof command === "string") return command;
  if (!Array.isArray(command) || !command.every((a): a is string => typeof a === "string")) return undefined;
  const [shell, flag, script, ...rest] = command;
  if (
    shell !== undefined &&
    /(^|\/)(ba|z|da)?sh$/.test(shell) &&
    /^-l?c$/.test(flag ?? "") &&
    script !== undefined &&
    rest.length === 0
  )
    return script;
  return command.join(" ");
}

/** The call's file diffs (ACP `{type: "diff"}` content). */
export function toolCallDiffs(call: PermissionToolCall | undefined): ToolCallDiff[] {
  if (!Array.isArray(call?.content)) return [];
  return call.content.flatMap((c: unknown) => {
    if (!isRecord(c) || c.type !== "diff" || typeof c.path !== "string" || typeof c.newText !== "string") return [];
    return [{ path: c.path, oldText: typeof c.oldText === "string" ? c.oldText : null, newText: c.newText }];
  });
}

/** The files the call touches: its locations, else its diffs' paths. */
export function toolCallPaths(call: PermissionToolCall | undefined): string[] {
  const paths = call?.locations?.map((l) => l.path) ?? [];
  return [...new Set(paths.length > 0 ? paths : toolCallDiffs(call).map((d) => d.path))];
}
