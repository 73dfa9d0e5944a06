/** What a stop does with sessions that could keep running: `keep` (held ones run on), `end` (every process ends). */
export type StopSessions = "keep" | "end";

export interface StopAsked {
  sessions: StopSessions;
  /** Who asked (a token's name). */
  by: string;
}

/**
 * A stop an admin asked for over HTTP (`POST /v1/shutdown`, `switchboard shutdown`). `serve`
 * handles it as a SIGTERM (its stop line, then the process exits); a gateway started without a
 * handler closes itself. Only the first request counts.
 */
export class StopRequest {
  private handler: ((asked: StopAsked) => void) | undefined;
  private asked: StopAsked | undefined;

  /** Who handles the stop (replacing the default). */
  onRequest(handler: (asked: StopAsked) => void): void {
    this.handler = handler;
  }

  /** Asks for the stop after the current request is answered; false when one was asked already. */
  request(asked: StopAsked): boolean {
    if (this.asked !== undefined) return false;
    this.asked = asked;
    setImmediate(() => this.handler?.(asked));
    return true;
  }
}
