import { pino } from "pino";
import type { Logger, DestinationStream } from "pino";

export type { Logger };

/**
 * Structured logs. Credentials never reach them: request logs carry the path without its query
 * string and the caller's token *name*; the redact list is a second line of defence.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env["SWITCHBOARD_LOG_LEVEL"] ?? "info",
      base: { service: "switchboard" },
      redact: {
        paths: [
          "token",
          "*.token",
          "authorization",
          "*.authorization",
          "headers.authorization",
          "headers.cookie",
          "cookie",
          "*.cookie",
        ],
        censor: "[redacted]",
      },
    },
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
