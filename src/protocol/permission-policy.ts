import { z } from "zod";

/**
 * A permission policy: ordered rules that answer an agent's permission requests before anyone
 * is asked, and how long a request may wait for a person (docs/agents.md, "Permission policy").
 * Pure: the server applies it, the UI previews it, the config and routes validate it with this schema.
 */

/** The ACP tool kinds a rule may name (`kind`); a request of another kind matches no rule that names one. */
export const TOOL_KINDS = [
  "read",
  "edit",
  "delete",
  "move",
  "search",
  "execute",
  "think",
  "fetch",
  "switch_mode",
  "other",
] as const;
export type ToolKind = (typeof TOOL_KINDS)[number];

/** What a rule answers: the agent's option of that kind, or `ask` (a person answers; later rules are not tried). */
export const POLICY_ANSWERS = ["allow_once", "reject_once", "ask"] as const;
export type PolicyAnswer = (typeof POLICY_ANSWERS)[number];

/** What an unanswered request gets once `timeoutMs` passed: the agent's option of that kind, or `cancelled`. */
export const TIMEOUT_ANSWERS = ["reject_once", "allow_once", "cancelled"] as const;
export type TimeoutAnswer = (typeof TIMEOUT_ANSWERS)[number];

/** How long a request waits for an answer without a policy saying otherwise (5 minutes). */
export const DEFAULT_POLICY_TIMEOUT_MS = 5 * 60_000;
/** The longest `timeoutMs` a policy may set (a day): a request is never left open forever. */
export const MAX_POLICY_TIMEOUT_MS = 24 * 3_600_000;
/** The most rules one policy holds. */
export const MAX_POLICY_RULES = 100;
/** The most path globs one rule holds. */
export const MAX_RULE_PATHS = 32;
/** The longest `command` regex source, in characters. */
export const MAX_RULE_COMMAND_CHARS = 500;
/**
 * The name `by` carries for the answer a request gets when `timeoutMs` passes (`rule:timeout`):
 * no rule may take it.
 */
export const TIMEOUT_RULE_NAME = "timeout";

const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const PolicyRule = z
  .strictObject({
    /** Shown as who answered (`by: rule:NAME`); unique in its policy. */
    name: z
      .string()
      .regex(RULE_NAME, "a rule name is 1-64 letters, digits, _ . - (starting with a letter or digit)")
      .refine((n) => n !== TIMEOUT_RULE_NAME, `${TIMEOUT_RULE_NAME} names the policy's onTimeout answer: pick another`),
    /** The tool call's ACP kind (one of {@link TOOL_KINDS}). */
    kind: z.string().max(100).optional(),
    /**
     * Globs every path the call touches must match (`*` within a path segment, `**` across, `?` one
     * character); a relative glob is taken from the session's cwd.
     */
    paths: z.array(z.string().min(1).max(500)).min(1).max(MAX_RULE_PATHS).optional(),
    /** true: every path the call touches is inside the session's cwd; false: at least one is outside. */
    insideCwd: z.boolean().optional(),
    /** A regular expression (JavaScript syntax) the execute command must match somewhere. */
    command: z.string().min(1).max(MAX_RULE_COMMAND_CHARS).optional(),
    answer: z.enum(POLICY_ANSWERS),
  })
  // Checked here rather than on the fields, so that the message names the rule (not only its index).
  .superRefine((rule, ctx) => {
    if (rule.kind !== undefined && !(TOOL_KINDS as readonly string[]).includes(rule.kind))
      ctx.addIssue({
        code: "custom",
        path: ["kind"],
        message: `rule ${rule.name}: unknown tool kind ${JSON.stringify(rule.kind)} (one of ${TOOL_KINDS.join(", ")})`,
      });
    const problem = rule.command === undefined ? undefined : regexProblem(rule.command);
    if (problem !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["command"],
        message: `rule ${rule.name}: command is not a valid regular expression: ${problem}`,
      });
  });
export type PolicyRule = z.infer<typeof PolicyRule>;

export const PermissionPolicy = z
  .strictObject({
    rules: z.array(PolicyRule).max(MAX_POLICY_RULES).default([]),
    /** How long a request no rule answered waits for a person; default {@link DEFAULT_POLICY_TIMEOUT_MS}. */
    timeoutMs: z.number().int().min(1).max(MAX_POLICY_TIMEOUT_MS).optional(),
    /** What it gets then; default `reject_once`. */
    onTimeout: z.enum(TIMEOUT_ANSWERS).optional(),
  })
  .superRefine((policy, ctx) => {
    const seen = new Set<string>();
    policy.rules.forEach((rule, i) => {
      if (seen.has(rule.name))
        ctx.addIssue({ code: "custom", path: ["rules", i, "name"], message: `rule ${rule.name} is named twice` });
      seen.add(rule.name);
    });
  });
export type PermissionPolicy = z.infer<typeof PermissionPolicy>;
export type PermissionPolicyInput = z.input<typeof PermissionPolicy>;

/** `GET` and `PUT /v1/sessions/:id/permission-policy`: the policy in force and whose it is. */
export interface PolicyInForce {
  policy: PermissionPolicy | null;
  /** `session`: set for this session; `agent`: its config entry's; `none`: no policy. */
  source: "session" | "agent" | "none";
}

/** One past permission request, as a previewed policy would have answered it, and what it got. */
export interface PolicyPreviewRow {
  seq: number;
  requestId: string;
  runId: string;
  title: string;
  toolCall?: PolicyRequest["toolCall"];
  /** The rule that matched; null: none (a person would be asked). */
  rule: string | null;
  answer: PolicyAnswerKind;
  optionId?: string;
  /** Why a matching rule asks a person (the agent offered no option of its answer). */
  reason?: string;
  /** How it was answered: outcome, option and who (`token:NAME`, `rule:NAME`); null: still open. */
  got: { outcome: "selected" | "cancelled"; optionId: string | null; by: string | null } | null;
}
type PolicyAnswerKind = (typeof POLICY_ANSWERS)[number];

/** `POST /v1/sessions/:id/permission-policy/preview`. */
export const PolicyPreviewBody = z.strictObject({ policy: PermissionPolicy });

function regexProblem(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (error) {
    return (error as Error).message.slice(0, 200);
  }
}

/** What a permission request shows a policy: the tool call and the options the agent offered. */
export interface PolicyRequest {
  toolCall?:
    | {
        kind?: string | undefined;
        rawInput?: unknown;
        content?: unknown;
        locations?: readonly { path: string }[] | undefined;
      }
    | undefined;
  options: readonly { optionId: string; kind: string }[];
}

/** How a policy answers one request: the rule that matched (none: a person answers). */
export type PolicyVerdict =
  | { rule: string; answer: "allow_once" | "reject_once"; optionId: string }
  | { rule: string; answer: "ask"; reason?: string }
  | { rule: null; answer: "ask" };

/**
 * The first rule of `policy` that matches `request` (a session's cwd `cwd`) and what it answers.
 * A rule whose answer the agent offers no option of falls back to `ask`, saying why.
 * @example
 * decide({ rules: [{ name: "reads", kind: "read", answer: "allow_once" }] }, request, "/repo")
 * // → { rule: "reads", answer: "allow_once", optionId: "allow" }
 */
export function decide(policy: Pick<PermissionPolicy, "rules">, request: PolicyRequest, cwd: string): PolicyVerdict {
  const facts = factsOf(request, cwd);
  for (const rule of policy.rules) {
    if (!matches(rule, facts)) continue;
    if (rule.answer === "ask") return { rule: rule.name, answer: "ask" };
    const option = request.options.find((o) => o.kind === rule.answer);
    if (option === undefined)
      return { rule: rule.name, answer: "ask", reason: `the agent offers no ${rule.answer} option` };
    return { rule: rule.name, answer: rule.answer, optionId: option.optionId };
  }
  return { rule: null, answer: "ask" };
}

interface Facts {
  kind: string | undefined;
  /** Absolute, normalized. */
  paths: string[];
  command: string | undefined;
  cwd: string;
}

function factsOf(request: PolicyRequest, cwd: string): Facts {
  const call = request.toolCall;
  const paths = new Set<string>();
  for (const location of call?.locations ?? []) paths.add(absolute(location.path, cwd));
  if (Array.isArray(call?.content))
    for (const item of call.content as unknown[]) {
      const path = isRecord(item) && item["type"] === "diff" ? item["path"] : undefined;
      if (typeof path === "string") paths.add(absolute(path, cwd));
    }
  return { kind: call?.kind, paths: [...paths], command: commandOf(call?.rawInput), cwd: normalize(cwd) };
}

function matches(rule: PolicyRule, facts: Facts): boolean {
  if (rule.kind !== undefined && facts.kind !== rule.kind) return false;
  if (rule.paths !== undefined || rule.insideCwd !== undefined) {
    if (facts.paths.length === 0) return false;
    if (rule.paths !== undefined) {
      const globs = rule.paths.map((g) => globRegExp(absolute(g, facts.cwd)));
      if (!facts.paths.every((p) => globs.some((g) => g.test(p)))) return false;
    }
    if (rule.insideCwd !== undefined) {
      const inside = facts.paths.every(
        (p) => p === facts.cwd || p.startsWith(facts.cwd === "/" ? "/" : `${facts.cwd}/`),
      );
      if (inside !== rule.insideCwd) return false;
    }
  }
  if (rule.command !== undefined) {
    if (facts.command === undefined || !new RegExp(rule.command).test(facts.command)) return false;
  }
  return true;
}

/**
 * The shell command of an execute call's `rawInput`: `command` (a string, or an argv array joined
 * with spaces), as Claude Code, Gemini CLI and Codex send it; `cmd` likewise.
 */
export function commandOf(rawInput: unknown): string | undefined {
  if (!isRecord(rawInput)) return undefined;
  for (const key of ["command", "cmd"]) {
    const value = rawInput[key];
    if (typeof value === "string") return value;
    if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join(" ");
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function absolute(path: string, cwd: string): string {
  return normalize(path.startsWith("/") ? path : `${cwd}/${path}`);
}

/** `path` without `.`, `..` and repeated slashes (POSIX, as the agents' paths are). */
function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

function globRegExp(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      // `/**/` also matches `/`: `src/**/x` takes `src/x`.
      if (glob[i + 2] === "/") {
        source += "(?:.*/)?";
        i += 2;
      } else {
        source += ".*";
        i += 1;
      }
    } else if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}
