import type { SessionInfo } from "../../src/protocol/index.js";

/** A session object as the gateway describes one: a running stream session, with `overrides`. */
export function sessionInfo(id: string, overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id,
    kind: "stream",
    name: `session ${id}`,
    state: "running",
    owner: "admin",
    command: null,
    cwd: null,
    pty: false,
    cols: null,
    rows: null,
    pid: null,
    exitCode: null,
    signal: null,
    createdAt: 1,
    endedAt: null,
    head: 0,
    first: 1,
    outputBytes: 0,
    viewers: 0,
    watchers: [],
    lastLine: null,
    controller: null,
    parent: null,
    agent: null,
    run: null,
    lastActivityAt: 1,
    ...overrides,
  };
}
