/** Client commands (run, attach, ls, logs, send, signal, kill, prompt) — filled in by the SDK/CLI work. */
export type Command = (argv: string[]) => Promise<number>;
export const COMMANDS: Record<string, Command> = {};
