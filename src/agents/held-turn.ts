// What an ACP agent session under a holder keeps in its record so that the gateway that adopts
// its agent goes on with the turn in flight (docs/agents.md, "Agents across gateway restarts"):
// where the agent's stdout has been applied to the log (a line boundary and the log's seq then),
// the block of JSON-RPC ids the gateway's connection sends from, and the run in flight with the
// id of its `session/prompt`. Pure: no Node imports.

/** The version of {@link HeldTurn} this build writes; it reads the versions in {@link READABLE_TURN_VERSIONS}. */
export const HELD_TURN_VERSION = 1;
/** The versions of a kept turn this build goes on with; another is refused (the run ends `chat.error`). */
export const READABLE_TURN_VERSIONS: ReadonlySet<number> = new Set([1]);

/**
 * Ids one gateway connection to an agent may use for its requests (from `idBase`): a connection
 * sends a few per run, and the next connection starts past the block, so an answer to an earlier
 * gateway's request is never taken for one of this connection's.
 */
export const REQUEST_ID_BLOCK = 1_000_000;

/** Where the agent's stdout is applied up to: the holder offset of a line boundary and the log's seq then. */
export interface HeldCursor {
  /** Holder offset of the first stdout byte whose events are not (all) in the log at {@link seq}. */
  offset: number;
  /** The log's newest appended seq when everything before {@link offset} had been applied. */
  seq: number;
}

/** The run in flight: its id and the JSON-RPC id its `session/prompt` went out with (null: not sent yet). */
export interface HeldRun {
  runId: string;
  promptId: number | null;
}

/**
 * Answers to the agent's requests a turn keeps (the newest): a request read again after an
 * adoption whose answer is among them is not handled again.
 */
export const MAX_KEPT_ANSWERS = 64;

export interface HeldTurn {
  v: number;
  /**
   * The agent's requests answered, as [JSON of the JSON-RPC id, mark]: each answer went to the
   * holder as input held for its mark, which the holder writes once a gateway says the mark is
   * committed — after this record is (the next gateway's HELLO names {@link mark}).
   */
  answered: Array<[id: string, mark: number]>;
  /** The newest mark an answer went out with. */
  mark: number;
  /** The first request id of the connection that wrote this. */
  idBase: number;
  cursor: HeldCursor;
  run: HeldRun | null;
}

/** A kept turn read back: one to go on with, or why it cannot be. */
export type KeptTurn = { kind: "turn"; turn: HeldTurn } | { kind: "refused"; reason: string };

/** The id block of a new connection: past the last one kept, and past the wall clock's (ms × 1000). */
export function nextIdBase(previous: number | undefined, nowMs: number): number {
  return Math.max((previous ?? 0) + REQUEST_ID_BLOCK, Math.floor(nowMs) * 1000);
}

/** Reads what a record keeps; undefined when it keeps nothing (an older build, or no turn kept). */
export function readKeptTurn(value: unknown): KeptTurn | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) return refused("it is not an object");
  const v = (value as { v?: unknown }).v;
  if (typeof v !== "number" || !READABLE_TURN_VERSIONS.has(v)) {
    return refused(
      `it was written in version ${String(v)} by another build; this build goes on with version(s) ${[...READABLE_TURN_VERSIONS].join(", ")}`,
    );
  }
  const turn = value as Partial<HeldTurn>;
  const cursor = turn.cursor;
  const run = turn.run;
  const valid =
    isCount(turn.idBase) &&
    isCount(turn.mark) &&
    Array.isArray(turn.answered) &&
    turn.answered.every((a) => Array.isArray(a) && typeof a[0] === "string" && isCount(a[1])) &&
    cursor !== undefined &&
    isCount(cursor.offset) &&
    isCount(cursor.seq) &&
    (run === null ||
      (run !== undefined &&
        typeof run.runId === "string" &&
        (run.promptId === null || Number.isSafeInteger(run.promptId))));
  if (!valid) return refused("its fields are not those of version 1");
  return { kind: "turn", turn: turn as HeldTurn };
}

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

const refused = (why: string): KeptTurn => ({
  kind: "refused",
  reason: `the turn in flight could not be continued after the gateway restarted: its kept state is unreadable (${why})`,
});
