/**
 * How the gateway's log lines read: pino's JSON lines for machines (a pipe, a file, the journal),
 * or one line a person reads on a terminal — time, level, message, then the other fields as
 * key=value. `SWITCHBOARD_LOG_FORMAT` (`json` or `pretty`) overrides the choice by stderr
 * (docs/operations.md, "Logs"; test/system/log-format.test.ts).
 */

export const LOG_FORMATS = ["json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The format `SWITCHBOARD_LOG_FORMAT` asks for; unset or empty: pretty on a terminal, JSON elsewhere. */
export function logFormatFromEnv(env: NodeJS.ProcessEnv, stderrIsTTY: boolean): LogFormat | string {
  const asked = env["SWITCHBOARD_LOG_FORMAT"];
  if (asked === undefined || asked === "") return stderrIsTTY ? "pretty" : "json";
  return asked;
}

export function isLogFormat(format: string): format is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(format);
}

/** pino's numeric levels, by name as shown. */
const LEVEL_NAMES: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
/** SGR colours of the level's name on a terminal. */
const LEVEL_COLOURS: Record<number, string> = { 10: "90", 20: "90", 30: "32", 40: "33", 50: "31", 60: "35" };
/** Fields every line has, or shown in front: not repeated as key=value. */
const SHOWN_FIRST = new Set(["level", "time", "msg", "service", "pid", "hostname"]);
/** A value shown as it is: printable ASCII but for spaces, quotes, `=` and backslashes. */
const BARE = /^[!#-<>-[\]-~]+$/;

/**
 * A pino JSON line as a person reads it: `12:03:04.567 INFO  gateway listening url=http://…`,
 * an error's stack on the lines after it, indented. A line that is not JSON is kept as it is.
 */
export function prettyLogLine(line: string, options: { colour: boolean }): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch (error) {
    // Not one of pino's lines: passed on as it came.
    if (error instanceof SyntaxError) return line;
    throw error;
  }
  const level = typeof record["level"] === "number" ? record["level"] : 30;
  const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
  const shownLevel = options.colour ? `\u001b[${LEVEL_COLOURS[level] ?? "0"}m${name}\u001b[0m` : name;
  const time = typeof record["time"] === "number" ? clockTime(record["time"]) : "--:--:--.---";
  const stacks: string[] = [];
  const fields = Object.entries(record)
    .filter(([key]) => !SHOWN_FIRST.has(key))
    .map(([key, value]) => {
      const stack = errorStack(value);
      if (stack !== undefined) stacks.push(stack);
      return `${key}=${fieldText(value)}`;
    });
  const msg = typeof record["msg"] === "string" ? record["msg"] : "";
  const head = [time, shownLevel, msg, ...fields].filter((part) => part !== "").join(" ");
  const tail = stacks.map((stack) => `\n${stack.replace(/^/gm, "    ")}`).join("");
  return `${head}${tail}\n`;
}

/** `HH:MM:SS.mmm` in local time. */
function clockTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/** A field's value: bare when it can be, JSON otherwise (a serialized error by its message). */
function fieldText(value: unknown): string {
  if (typeof value === "string") return BARE.test(value) ? value : JSON.stringify(value);
  if (isSerializedError(value)) return JSON.stringify(value.message);
  return JSON.stringify(value) ?? String(value);
}

/** The stack of an error pino serialized (`{type, message, stack}`), without its first line (the message). */
function errorStack(value: unknown): string | undefined {
  if (!isSerializedError(value) || typeof value.stack !== "string") return undefined;
  const frames = value.stack.split("\n").filter((l) => /^\s+at /.test(l));
  return frames.length > 0 ? frames.map((l) => l.trim()).join("\n") : undefined;
}

function isSerializedError(value: unknown): value is { message: string; stack?: unknown } {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { message?: unknown }).message === "string" &&
    typeof (value as { type?: unknown }).type === "string"
  );
}
