import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
// From the modules themselves, not the indexes: a command's start loads neither zod nor ws.
import { ConnectionError } from "../client/errors.js";
import { HttpClient } from "../client/http.js";
import { isPublicError, InternalError } from "../protocol/errors.js";
import { tokenCharsProblem } from "../protocol/token-chars.js";
import type { GatewayTarget } from "../client/node.js";
import { EXIT, UsageError, exitCodeFor } from "./exit-codes.js";
import { gatewayFile, readGatewayFile } from "./gateway-file.js";
import { printable } from "./printable.js";

/** Where the CLI looks for the gateway when neither --url nor SWITCHBOARD_URL says. */
export const DEFAULT_URL = "http://127.0.0.1:7317";
/** The data dir whose `token` file is read when no token is given (what `npm start` serves with). */
export const DEFAULT_DATA_DIR = ".switchboard";

/** Options every client command takes. */
export const COMMON_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  "data-dir": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

export const COMMON_USAGE = `Common options:
  --url URL        the gateway (default: $SWITCHBOARD_URL, else the URL a running gateway wrote in
                   the data dir's gateway.json, else ${DEFAULT_URL})
  --token T        the token (default: $SWITCHBOARD_TOKEN, else the token file of the data dir)
  --token-file F   read the token from file F (default: $SWITCHBOARD_TOKEN_FILE); keeps it off the command line
  --data-dir DIR   where to find the gateway's token and gateway.json (default: $SWITCHBOARD_DATA_DIR,
                   else ./${DEFAULT_DATA_DIR})
  --json           machine-readable output on stdout (errors too: {"error": {code, message}})`;

/** Everything a command needs to reach the gateway and talk to the user. */
export interface CliContext {
  target: GatewayTarget & { url: string };
  http: HttpClient;
  json: boolean;
  /** Where the token came from, for error messages. */
  tokenSource: string;
  /** Where the URL came from, for error messages. */
  urlSource: UrlSource;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export interface CliIO {
  env: NodeJS.ProcessEnv;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

const processIO: CliIO = { env: process.env, out: process.stdout, err: process.stderr };

type Options = NonNullable<ParseArgsConfig["options"]>;
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ options: O & typeof COMMON_OPTIONS; allowPositionals: true; strict: true }>
>;

/**
 * Runs one client command: parses its options (plus the common ones), answers --help,
 * resolves the gateway and token, and turns any error into a clear message and an exit code.
 */
export async function runCommand<O extends Options>(
  argv: string[],
  spec: {
    usage: string;
    options: O;
    /** The most positional arguments the command takes (default: any number). */
    positionals?: number;
    /**
     * After this many positionals, the rest of the command line is the command's operands (the
     * program to run, the text to type) even where it looks like options: `run make -j4 --pty`
     * runs `make -j4 --pty`, `send ID grep -n foo` types `grep -n foo`. Options go before them.
     */
    operandsAfter?: number;
  },
  body: (ctx: CliContext, parsed: Parsed<O>) => Promise<number>,
  io: CliIO = processIO,
): Promise<number> {
  let parsed: Parsed<O>;
  const options = { ...spec.options, ...COMMON_OPTIONS };
  try {
    const args = protectIds(argv, options, spec.operandsAfter);
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true }) as Parsed<O>;
    parsed.positionals.forEach((p, i) => (parsed.positionals[i] = unprotect(p)));
    const extra = spec.positionals !== undefined ? parsed.positionals[spec.positionals] : undefined;
    if (extra !== undefined) throw new InternalError(`unexpected argument ${JSON.stringify(extra)}`);
  } catch (error) {
    // The parser stops at the first mistake, so --json is looked for in the raw arguments.
    return reportUsageError(io, wantsJson(argv), parseErrorMessage(error, spec), spec.usage);
  }
  const values = parsed.values as Record<string, unknown>;
  if (values["help"] === true) {
    io.out.write(`${spec.usage}\n\n${COMMON_USAGE}\n`);
    return EXIT.OK;
  }
  const json = values["json"] === true;
  let ctx: CliContext;
  try {
    const { target, tokenSource, urlSource } = resolveTarget(values, io.env);
    ctx = { target, http: new HttpClient(target), json, tokenSource, urlSource, out: io.out, err: io.err };
  } catch (error) {
    if (error instanceof UsageError) return reportUsageError(io, json, error.message, spec.usage);
    throw error;
  }
  try {
    return await body(ctx, parsed);
  } catch (error) {
    if (error instanceof UsageError) return reportUsageError(io, json, error.message, spec.usage);
    reportError(ctx, error);
    return exitCodeFor(error);
  }
}

/**
 * A mistake the option parser found, in the CLI's words. Node's own for an unknown option
 * advises putting a positional "at the end of the command after '--'", with an unbalanced quote,
 * also for commands that take no positionals (`ls --bogus`).
 */
function parseErrorMessage(error: unknown, spec: { operandsAfter?: number }): string {
  const message = (error as Error).message;
  const unknown = /^Unknown option '([^']*)'/.exec(message);
  if ((error as NodeJS.ErrnoException).code !== "ERR_PARSE_ARGS_UNKNOWN_OPTION" || unknown === null) return message;
  const option = unknown[1]!;
  // Commands whose operands are passed on as they are (run's command, send's and prompt's text).
  if (spec.operandsAfter !== undefined)
    return `unknown option ${option} (to pass on a word that starts with "-", put -- before it)`;
  return `unknown option ${option}`;
}

/** Whether the command line asks for --json (before any `--`), for errors found before it is parsed. */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end >= 0 ? argv.slice(0, end) : argv).includes("--json");
}

/**
 * A command-line mistake: the message and the usage on stderr, or with --json
 * `{"error": {"code": "USAGE", ...}}` on stdout. Returns {@link EXIT.USAGE}.
 */
export function reportUsageError(
  io: Pick<CliIO, "out" | "err">,
  json: boolean,
  message: string,
  usage: string,
): number {
  if (json) io.out.write(`${JSON.stringify({ error: { code: "USAGE", message, exitCode: EXIT.USAGE } })}\n`);
  else io.err.write(`switchboard: ${message}\n\n${usage}\n`);
  return EXIT.USAGE;
}

/**
 * Ids are base64url (sessions 22 characters, share links and devices 12): about one in 64 starts
 * with "-" and would read as an option (test/cli/devices.test.ts, "takes a device or share id").
 */
const ID_LIKE = /^-[A-Za-z0-9_-]{11,}$/;
const PROTECT = "\u0000";

/**
 * Marks arguments that look like session ids but start with "-" (and are no known option) so
 * the option parser takes them as positionals; `--` before them works too. With `operandsAfter`,
 * puts a `--` before the positional that follows that many (see `runCommand`).
 */
function protectIds(argv: readonly string[], options: Options, operandsAfter?: number): string[] {
  const out: string[] = [];
  let positionals = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") return [...out, ...argv.slice(i)];
    const long = arg.startsWith("--") ? arg.slice(2).split("=", 1)[0]! : undefined;
    const known = long !== undefined && Object.hasOwn(options, long);
    const isPositional = !arg.startsWith("-") || arg === "-" || (!known && ID_LIKE.test(arg));
    if (isPositional && positionals === operandsAfter) return [...out, "--", ...argv.slice(i)];
    if (isPositional) positionals++;
    out.push(!known && ID_LIKE.test(arg) ? PROTECT + arg : arg);
    // The value of a string option is never an option itself.
    if (known && !arg.includes("=") && options[long]?.type === "string" && i + 1 < argv.length) out.push(argv[++i]!);
  }
  return out;
}

function unprotect(value: string): string {
  return value.startsWith(PROTECT) ? value.slice(PROTECT.length) : value;
}

/** The gateway URL and token from flags, environment and the data dir's token file, in that order. */
export function resolveTarget(values: Record<string, unknown>, env: NodeJS.ProcessEnv): Resolved {
  const dataDir = str(values["data-dir"]) ?? nonEmpty(env["SWITCHBOARD_DATA_DIR"]) ?? DEFAULT_DATA_DIR;
  const { url, urlSource } = gatewayLocation(values, env, dataDir);
  const flag = str(values["token"]);
  // (An unset variable in `--token "$T"`: sent as is, the gateway's refusal would blame the token.)
  if (flag === "")
    throw new UsageError(
      "--token is empty: give the token, or leave --token out to use SWITCHBOARD_TOKEN or the data dir's token file",
    );
  const fileFlag = str(values["token-file"]);
  if (flag !== undefined && fileFlag !== undefined)
    throw new UsageError("--token and --token-file both give the token: give one of them");
  if (flag !== undefined)
    return { target: { url, token: checkedToken(flag, "--token") }, tokenSource: "--token", urlSource };
  if (fileFlag !== undefined) return { ...tokenFromFile(url, fileFlag, "--token-file"), urlSource };
  const fromEnv = nonEmpty(env["SWITCHBOARD_TOKEN"]);
  if (fromEnv !== undefined)
    return {
      target: { url, token: checkedToken(fromEnv, "SWITCHBOARD_TOKEN") },
      tokenSource: "SWITCHBOARD_TOKEN",
      urlSource,
    };
  const envFile = nonEmpty(env["SWITCHBOARD_TOKEN_FILE"]);
  if (envFile !== undefined) return { ...tokenFromFile(url, envFile, "SWITCHBOARD_TOKEN_FILE"), urlSource };
  const file = resolve(join(dataDir, "token"));
  let token: string | undefined;
  try {
    token = nonEmpty(readFileSync(file, "utf8").trim());
  } catch (error) {
    // No readable token file is an ordinary case (a remote gateway): the request then fails
    // with UNAUTHORIZED and the message below says where the CLI looked.
    if (!(error instanceof Error)) throw error;
  }
  // Said with the file, should the gateway refuse it: a gateway started with --token leaves an
  // earlier start's file where it was (exploratory test).
  if (token !== undefined)
    return {
      target: { url, token },
      tokenSource: `${file} (the data directory's token file: a gateway started with --token or SWITCHBOARD_TOKEN does not use it; pass that token instead)`,
      urlSource,
    };
  return { target: { url }, tokenSource: `none (no --token, no SWITCHBOARD_TOKEN, no readable ${file})`, urlSource };
}

/** What {@link resolveTarget} found: the gateway, its token, and where each came from (for error messages). */
export interface Resolved {
  target: GatewayTarget & { url: string };
  tokenSource: string;
  urlSource: UrlSource;
}

/** Where the gateway's URL came from: a flag, the variable, the data dir's gateway.json (its path), or the default. */
export type UrlSource = "--url" | "SWITCHBOARD_URL" | { file: string } | "default";

/**
 * The gateway's URL: --url, else SWITCHBOARD_URL, else what a gateway serving `dataDir` recorded
 * in its gateway.json (src/cli/gateway-file.ts), else {@link DEFAULT_URL}.
 */
function gatewayLocation(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  dataDir: string,
): { url: string; urlSource: UrlSource } {
  const given = str(values["url"]);
  if (given !== undefined) return { url: gatewayUrl(given, "--url"), urlSource: "--url" };
  const fromEnv = nonEmpty(env["SWITCHBOARD_URL"]);
  if (fromEnv !== undefined) return { url: gatewayUrl(fromEnv, "SWITCHBOARD_URL"), urlSource: "SWITCHBOARD_URL" };
  const recorded = readGatewayFile(dataDir);
  if (recorded !== undefined) {
    const file = gatewayFile(dataDir);
    return { url: gatewayUrl(recorded.url, file), urlSource: { file } };
  }
  return { url: DEFAULT_URL, urlSource: "default" };
}

/** `token`, or a usage error when it cannot travel in a header (fetch's "Cannot convert argument to a ByteString" read as unreachable). */
function checkedToken(token: string, source: string): string {
  const problem = tokenCharsProblem(token);
  if (problem !== undefined) throw new UsageError(`${source} cannot be a token: ${problem}`);
  return token;
}

/**
 * The token in a file named on purpose (`--token-file`, `SWITCHBOARD_TOKEN_FILE`): unlike the
 * data dir's token file, which may well be absent, one that cannot be read or is empty is a
 * mistake to report, not a reason to send no token.
 */
function tokenFromFile(
  url: string,
  path: string,
  source: string,
): { target: GatewayTarget & { url: string }; tokenSource: string } {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new UsageError(`${source}: cannot read ${printable(file)} (${reason})`);
  }
  const token = nonEmpty(text.trim());
  if (token === undefined) throw new UsageError(`${source}: ${printable(file)} is empty`);
  return { target: { url, token: checkedToken(token, `${source} ${printable(file)}`) }, tokenSource: file };
}

/** The gateway URL, checked here: a malformed one is a command-line mistake, not the gateway's. */
function gatewayUrl(url: string, source: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch (error) {
    // Not a URL at all: said below, with what one looks like.
    if (!(error instanceof TypeError)) throw error;
  }
  if (parsed === undefined || !GATEWAY_PROTOCOLS.includes(parsed.protocol)) {
    throw new UsageError(
      `${source} must be the gateway's URL, like ${DEFAULT_URL} (http, https, ws or wss), not "${withoutCredentials(url)}"`,
    );
  }
  // Not echoed: what is in front of the @ is likely a password.
  if (parsed.username !== "" || parsed.password !== "") {
    throw new UsageError(
      `${source} must not carry a user name or password (user:pass@): the gateway takes a token (--token or SWITCHBOARD_TOKEN)`,
    );
  }
  return url;
}

const GATEWAY_PROTOCOLS = ["http:", "https:", "ws:", "wss:"];

/**
 * `url` as it may be echoed: whatever stands before an `@` in its authority (a user name and
 * password) is replaced by `***`, also in a string that does not parse as a URL.
 */
function withoutCredentials(url: string): string {
  return url.replace(/^([^:/?#]*:\/\/)?[^/?#]*@/, (_whole, scheme: string | undefined) => `${scheme ?? ""}***@`);
}

/** Prints an error: a sentence on stderr, or `{"error": {...}}` on stdout with --json. */
export function reportError(ctx: CliContext, error: unknown): void {
  const code = isPublicError(error) || error instanceof ConnectionError ? error.code : "INTERNAL";
  const message = describeError(ctx, error);
  if (ctx.json) ctx.out.write(`${JSON.stringify({ error: { code, message, exitCode: exitCodeFor(error) } })}\n`);
  // Messages quote the gateway, which quotes what others sent (names, commands).
  else ctx.err.write(`switchboard: ${printable(message)}\n`);
}

/**
 * An error in a sentence. In text the code follows in parentheses; with --json it is a field
 * of its own (`ctx.json`), so the message does not repeat it.
 */
export function describeError(
  ctx: Pick<CliContext, "target" | "tokenSource" | "json"> & { urlSource?: UrlSource },
  error: unknown,
): string {
  const tagged = (message: string, code: string) => (ctx.json ? message : `${message} (${code})`);
  if (error instanceof ConnectionError) {
    if (error.code === "UNREACHABLE") {
      const source = ctx.urlSource;
      const from =
        source === undefined || source === "default"
          ? `no --url, SWITCHBOARD_URL or running gateway's gateway.json in the data dir: the default`
          : typeof source === "string"
            ? source
            : `${source.file}, which a gateway wrote`;
      return `${error.message} (the URL from ${from}). Is the gateway running ("switchboard serve")? Point --url or SWITCHBOARD_URL at it, or --data-dir at its data dir.`;
    }
    return tagged(error.message, error.code);
  }
  if (isPublicError(error)) {
    switch (error.code) {
      case "UNAUTHORIZED":
        return ctx.target.token === undefined
          ? `no token: pass --token, set SWITCHBOARD_TOKEN, or use --data-dir with the gateway's data dir (tried: ${ctx.tokenSource})`
          : tagged(`the gateway at ${ctx.target.url} refused the token from ${ctx.tokenSource}`, error.code);
      case "SESSION_NOT_FOUND":
        return `${tagged(error.message, error.code)}; "switchboard ls" lists sessions`;
      default:
        return tagged(error.message, error.code);
    }
  }
  return error instanceof Error ? error.message : String(error);
}

/** The one positional a command needs, or a usage error naming it. */
export function positional(parsed: { positionals: string[] }, index: number, name: string): string {
  const value = parsed.positionals[index];
  if (value === undefined || value === "") throw new UsageError(`missing ${name}`);
  return value;
}

/** A non-negative integer option. */
export function intOption(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !/^\d{1,15}$/.test(value))
    throw new UsageError(`${name} must be a non-negative integer`);
  return Number(value);
}

export function writeJson(ctx: CliContext, value: unknown): void {
  ctx.out.write(`${JSON.stringify(value)}\n`);
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
