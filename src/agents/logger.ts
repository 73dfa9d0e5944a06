/** The slice of a pino logger the agent layer uses (pino's `(obj, msg)` call shape). */
export interface AgentLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

const ignore = (): void => undefined;

/** Default when no logger is given: the agent layer's diagnostics go nowhere. */
export const silentLogger: AgentLogger = { debug: ignore, info: ignore, warn: ignore, error: ignore };

/** A short, loggable description of any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "object" && err !== null && "message" in err && typeof err.message === "string") {
    return err.message;
  }
  return String(err);
}
