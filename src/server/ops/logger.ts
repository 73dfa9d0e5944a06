import { pino } from "pino";
import type { Logger, DestinationStream } from "pino";
import { LogDestination } from "../../system/log-destination.js";
import { isLogFormat, logFormatFromEnv } from "../../system/log-format.js";
import { mappedStack } from "../../system/stack-maps.js";

export type { Logger };

/** What `SWITCHBOARD_LOG_LEVEL` may say (pino's levels, any case; `silent` logs nothing). */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export const DEFAULT_LOG_LEVEL = "info";

/** The level `SWITCHBOARD_LOG_LEVEL` asks for; unset or empty is the default, as for every `SWITCHBOARD_*` variable. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env["SWITCHBOARD_LOG_LEVEL"] || DEFAULT_LOG_LEVEL;
}

/** Whether pino takes `level` (it lower-cases it); anything else makes it throw "default level:… must be included in custom levels". */
export function isLogLevel(level: string): boolean {
  return (LOG_LEVELS as readonly string[]).includes(level.toLowerCase());
}

/** JSON lines, or lines for people when stderr is a terminal (src/system/log-format.ts); serve refuses another SWITCHBOARD_LOG_FORMAT. */
function stderrLogFormat(): "json" | "pretty" {
  const format = logFormatFromEnv(process.env, process.stderr.isTTY === true);
  return isLogFormat(format) ? format : "json";
}

/**
 * Structured logs. Credentials never reach them: request logs carry the path without its query
 * string and the caller's token *name*; the redact list is a second line of defence.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? logLevelFromEnv(),
      base: { service: "switchboard" },
      // A logged error names src/ lines (src/system/stack-maps.ts formats stacks plain).
      serializers: { err: mappedError },
      redact: {
        paths: [
          "token",
          "*.token",
          "authorization",
          "*.authorization",
          "headers.authorization",
          "headers.cookie",
          'headers["x-switchboard-cookie-key"]',
          "cookie",
          "*.cookie",
        ],
        censor: "[redacted]",
      },
    },
    // Not pino.destination: its flush at exit waits without end on a pipe nobody reads (log-destination.ts).
    // Nor a pino transport: the CLI bundles pino, and a transport finds its worker file by path.
    options.destination ?? new LogDestination(process.stderr, { format: stderrLogFormat() }),
  );
}

/** pino's error serializer, the stack mapped to src/ lines. */
function mappedError(error: unknown): unknown {
  const serialized: unknown = pino.stdSerializers.err(error as Error);
  if (
    typeof serialized === "object" &&
    serialized !== null &&
    "stack" in serialized &&
    typeof serialized.stack === "string"
  )
    serialized.stack = mappedStack(serialized.stack);
  return serialized;
}
