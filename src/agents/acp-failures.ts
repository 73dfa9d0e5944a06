import { isRecord } from "./acp-wire.js";

/** ACP's `auth_required` error code: the agent needs its user to log in (or a key) first. */
export const ACP_AUTH_REQUIRED = -32000;
/** Most characters of an error's `data` quoted in a run's error. */
const ERROR_DATA_CHARS = 1_000;
/** Most lines, and characters, of the agent's stderr quoted in a start failure. */
const STDERR_LINES = 5;
const STDERR_CHARS = 1_000;

/** A JSON-RPC error the agent answered with (the SDK rejects a request with the error object itself). */
export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

export function asRpcError(err: unknown): RpcError | undefined {
  if (!isRecord(err) || typeof err.code !== "number" || typeof err.message !== "string") return undefined;
  return { code: err.code, message: err.message, data: err.data };
}

/** "error CODE: MESSAGE[: what its data says]" (the reason is often only in `data`). */
export function describeRpcError(error: RpcError): string {
  const why = errorData(error.data);
  return `error ${error.code}: ${error.message}${why === undefined || why === error.message ? "" : `: ${why}`}`;
}

/**
 * What a JSON-RPC error's `data` says, as text: its `details` or `message`, a string, or its
 * JSON. The ACP SDK puts a thrown error's message in `data.details` under a bare "Internal error".
 */
function errorData(data: unknown): string | undefined {
  if (data === undefined || data === null) return undefined;
  let text: string | undefined;
  if (typeof data === "string") text = data;
  else if (isRecord(data) && typeof data["details"] === "string") text = data["details"];
  else if (isRecord(data) && typeof data["message"] === "string") text = data["message"];
  else if (isRecord(data) && Object.keys(data).length === 0) return undefined;
  else text = JSON.stringify(data);
  text = text.trim();
  if (text === "") return undefined;
  return text.length > ERROR_DATA_CHARS ? `${text.slice(0, ERROR_DATA_CHARS)}…` : text;
}

/** "; its stderr ends: a | b" with the last lines of the agent's stderr, or "" when it wrote none. */
export function stderrNote(tail: string): string {
  if (tail === "") return "";
  let lines = tail.split("\n").slice(-STDERR_LINES).join(" | ");
  if (lines.length > STDERR_CHARS) lines = `…${lines.slice(-STDERR_CHARS)}`;
  return `; its stderr ends: ${lines}`;
}

/** An ACP `authMethods` entry, as far as the gateway reads it. */
interface AuthMethodInfo {
  id: string;
  name: string;
  description: string | undefined;
  /** Terminal methods: the agent's own command is run with these arguments in a terminal. */
  terminalArgs: string[] | undefined;
}

/** The agent's advertised `authMethods` (from `initialize`), malformed entries skipped. */
export function readAuthMethods(raw: unknown): AuthMethodInfo[] {
  if (!Array.isArray(raw)) return [];
  const methods: AuthMethodInfo[] = [];
  for (const m of raw) {
    if (!isRecord(m) || typeof m.id !== "string" || typeof m.name !== "string") continue;
    const args = Array.isArray(m.args) && m.args.every((a) => typeof a === "string") ? (m.args as string[]) : [];
    methods.push({
      id: m.id,
      name: m.name,
      description: typeof m.description === "string" && m.description.trim() !== "" ? m.description.trim() : undefined,
      terminalArgs: m.type === "terminal" ? args : undefined,
    });
  }
  return methods;
}

/**
 * The message of AGENT_AUTH_REQUIRED: what the agent said, then each login method it offers as
 * something to do — a terminal method as the command to run (the agent's argv plus the method's
 * arguments, as ACP's terminal auth defines it), any other as the `authMethod` to configure so
 * the gateway calls ACP `authenticate` with it.
 */
export function authRequiredMessage(error: RpcError, methods: AuthMethodInfo[], command: string[]): string {
  const head = `the agent needs a login before it can work (it answered ${describeRpcError(error)})`;
  if (methods.length === 0)
    return `${head}; it offers no login method over ACP: log in as its documentation says, then prompt again`;
  const ways = methods.map((m) => {
    const what = `"${m.name}"${m.description !== undefined && m.description !== m.name ? ` (${m.description})` : ""}`;
    return m.terminalArgs !== undefined
      ? `${what}: run \`${shellQuote([...command, ...m.terminalArgs])}\` in a terminal as the user the gateway runs as`
      : `${what}: set the agent's "authMethod" to "${m.id}" in the gateway config (with what that method needs, e.g. a key in the agent's env) and the gateway authenticates with it`;
  });
  return `${head}. To log in: ${ways.join("; or ")}. Then prompt again`;
}

const SAFE_WORD = /^[\w@%+=:,./-]+$/;

function shellQuote(argv: string[]): string {
  return argv.map((a) => (SAFE_WORD.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}
