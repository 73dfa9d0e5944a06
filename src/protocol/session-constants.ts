/**
 * The closed lists of sessions' kinds, states and signals, without schemas: the CLI checks its
 * command line against them without loading zod (docs/cli.md, "Start time"). src/protocol/sessions.ts
 * builds its schemas on them and re-exports them.
 */
export const SESSION_KINDS = ["terminal", "agent", "stream"] as const;
export type SessionKind = (typeof SESSION_KINDS)[number];
export const SESSION_STATES = ["running", "exited", "lost"] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** Signals a client may send. Delivered to the session's process group. */
export const SIGNALS = ["INT", "TERM", "KILL", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT", "WINCH"] as const;
export type SignalName = (typeof SIGNALS)[number];

/** `INT`, `SIGINT`, `int` or `sigint` as the bare upper-case name, or undefined for no signal of {@link SIGNALS} (as the Signal schema reads it). */
export function signalName(text: string): SignalName | undefined {
  const name = text.toUpperCase().replace(/^SIG/, "");
  return (SIGNALS as readonly string[]).includes(name) ? (name as SignalName) : undefined;
}
