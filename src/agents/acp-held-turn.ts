import type { TurnKeeper } from "./adapter.js";
import type { AgentChild } from "./agent-process.js";
import { HELD_TURN_VERSION, MAX_KEPT_ANSWERS, nextIdBase } from "./held-turn.js";
import type { HeldCursor, HeldRun, HeldTurn } from "./held-turn.js";

export interface AcpHeldTurnOptions {
  /** Where the session keeps the turn (its record); undefined: the agent is not under a holder. */
  turns: TurnKeeper | undefined;
  /** The adapter's agent process now (undefined before the start and after a replacement). */
  proc: () => AgentChild | undefined;
  /** Let go of at a gateway stop: nothing here acts on the process any more. */
  detached: () => boolean;
  /** The adapter is dead: its process is gone or stopping. */
  dead: () => boolean;
  /** Whether the open run's pacers hold nothing back (true when no run is open). */
  quiet: () => boolean;
}

/**
 * One ACP connection's side of a turn under a holder (held-turn.ts): its block of request ids,
 * the stdout cursor it moves as lines are applied, the run in flight and the answers made
 * exactly-once, saved in the record through the {@link TurnKeeper}; the holder is told to forget
 * stdout up to a cursor once the record holding it is committed (test/agents/held-turn.test.ts).
 */
export class AcpHeldTurn {
  private readonly options: AcpHeldTurnOptions;
  /** This connection's request id block, where stdout is applied to, and saves not yet acknowledged. */
  private base = 0;
  private cursor: HeldCursor | undefined;
  private heldRun: HeldRun | null = null;
  private readonly unacked: Array<HeldCursor> = [];
  /** Answers to the agent's requests made exactly-once (held-turn.ts): the newest, and the last mark. */
  private answered: Array<[id: string, mark: number]> = [];
  private mark = 0;
  /** The newest mark given to an answer or prompt; {@link mark} is the newest recorded. */
  private markGiven = 0;
  /** The id of the `session/prompt` on its way to the holder, not yet recorded. */
  private promptGoing: number | undefined;
  private turnEnding = false;
  /** The end of the last stdout line applied, and how many of the agent's requests waited then. */
  private lastApplied: { offset: number; answering: number } | undefined;
  /** The newest cursor not saved yet: saved at most once a turn of the event loop (a record write each). */
  private candidate: HeldCursor | undefined;
  private cursorSaveQueued = false;

  constructor(options: AcpHeldTurnOptions) {
    this.options = options;
  }

  /** The first request id of this connection (0 for an agent not under a holder). */
  get idBase(): number {
    return this.base;
  }

  /** The JSON of the ids of the agent's requests answered before (by an earlier gateway): not handled again. */
  answeredIds(): Set<string> {
    return new Set(this.answered.map(([id]) => id));
  }

  /**
   * A connection to `proc`, under a holder, starts: from what the record `kept` when it is
   * adopted, else from the process's first stdout byte. Answers to the agent's requests are held
   * for their marks until the record naming them is committed.
   */
  begin(proc: AgentChild, kept: HeldTurn | undefined, nowMs: number): void {
    const turns = this.options.turns;
    this.base = nextIdBase(kept?.idBase, nowMs);
    this.cursor = kept?.cursor ?? { offset: proc.firstOffset?.() ?? 0, seq: turns?.appended() ?? 0 };
    this.answered = [...(kept?.answered ?? [])];
    this.mark = kept?.mark ?? 0;
    this.markGiven = this.mark;
    this.keep(kept?.run ?? null);
    proc.holdAnswers?.({
      next: () => ++this.markGiven,
      recorded: (id, mark) => {
        // Until now a record written (a run's end) kept the mark before: the holder drops this
        // answer if the gateway dies first, and the next one answers again.
        this.mark = mark;
        if (id !== undefined) this.answered.push([id, mark]);
        else if (this.promptGoing !== undefined && this.heldRun !== null) {
          // The prompt has left for the holder: from now on the record says it was sent.
          this.heldRun = { ...this.heldRun, promptId: this.promptGoing };
          this.promptGoing = undefined;
        }
        if (this.answered.length > MAX_KEPT_ANSWERS) this.answered.shift();
        this.keep(this.heldRun);
        if (this.options.turns?.flush() === true) this.ackRecorded();
      },
    });
  }

  /**
   * A request went out: a `session/prompt` is recorded with the prompt (see {@link begin}), not
   * before: a record naming a prompt id the holder never got would wait for its answer for ever.
   */
  sent(method: string, wireId: number): void {
    if (method === "session/prompt" && this.heldRun !== null) this.promptGoing = wireId;
  }

  /** A new run starts: the cursor moves past the run before, and the record names this one. */
  runStarted(runId: string): void {
    this.cursorToApplied();
    this.keep({ runId, promptId: null });
    const turns = this.options.turns;
    if (this.cursor !== undefined && turns !== undefined) {
      this.unacked.push({ offset: this.cursor.offset, seq: turns.appended() });
    }
  }

  /** Held agents: keeps the run in flight (null: none) with the cursor in the record. */
  keep(run: HeldRun | null): void {
    const turns = this.options.turns;
    if (turns === undefined || this.cursor === undefined || this.options.proc()?.ackTo === undefined) return;
    this.heldRun = run;
    turns.save({
      v: HELD_TURN_VERSION,
      idBase: this.base,
      cursor: this.cursor,
      run,
      answered: this.answered,
      mark: this.mark,
    });
  }

  /**
   * Everything the agent wrote before `offset` is applied: with no request of the agent's waiting
   * for its answer and nothing held in the run's pacers, that is the new cursor, saved in the
   * record (behind the events). The holder may forget stdout up to a cursor once the record
   * holding it is committed, i.e. once an event appended after it is.
   */
  applied(offset: number, answering: number): void {
    const turns = this.options.turns;
    const proc = this.options.proc();
    if (turns === undefined || proc?.ackTo === undefined) return;
    this.lastApplied = { offset, answering };
    if (answering === 0 && this.options.quiet() && !this.turnEnding && !turns.replaying()) {
      if (offset > (this.candidate?.offset ?? this.cursor?.offset ?? -1)) {
        this.candidate = { offset, seq: turns.appended() };
        this.queueCursorSave();
      }
    }
    this.ackDurable();
  }

  /**
   * The run's end (its last text, `chat.final`) is appended once the session settles it, after
   * this: the record stops naming the run, and the cursor moves past its answer, only after that,
   * so a record without the run never comes before its end, nor a cursor past the answer before
   * it. Both go in one record: left before the answer, a gateway killed before the next run read
   * the answer again and logged it a second time between runs (test/agents/held-turn.test.ts,
   * "does not log a finished run's answer again…").
   */
  turnEnded(runId: string): void {
    if (this.options.detached() || this.heldRun?.runId !== runId) return;
    this.turnEnding = true;
    setImmediate(() => {
      this.turnEnding = false;
      if (this.options.detached() || this.heldRun?.runId !== runId) return;
      // An answer to the agent still leaving this process may not be passed (see queueCursorSave).
      const moved =
        this.options.proc()?.answersHeld?.() !== true &&
        this.options.turns?.replaying() !== true &&
        this.cursorToApplied();
      this.keep(null);
      const turns = this.options.turns;
      if (moved && this.cursor !== undefined && turns !== undefined) {
        this.unacked.push({ offset: this.cursor.offset, seq: turns.appended() });
        this.ackDurable();
      }
    });
  }

  /**
   * A run has ended in the log (a run starts, or its end was appended), so stdout applied so far
   * is all there: the cursor moves to it at once, so a replay never reads the run before's lines
   * again (an update names no turn). Returns whether it moved.
   */
  private cursorToApplied(): boolean {
    const turns = this.options.turns;
    const last = this.lastApplied;
    if (turns === undefined || last === undefined || last.answering > 0) return false;
    if (this.cursor !== undefined && last.offset <= this.cursor.offset) return false;
    this.candidate = undefined;
    this.cursor = { offset: last.offset, seq: turns.appended() };
    return true;
  }

  private queueCursorSave(): void {
    if (this.cursorSaveQueued) return;
    this.cursorSaveQueued = true;
    setImmediate(() => {
      this.cursorSaveQueued = false;
      const cursor = this.candidate;
      const turns = this.options.turns;
      if (cursor === undefined || turns === undefined || this.options.detached() || this.options.dead()) return;
      // An answer still leaving this process is not recorded yet: the cursor may not pass its
      // request (the next applied line queues this save again).
      if (this.options.proc()?.answersHeld?.() === true) return;
      this.candidate = undefined;
      this.cursor = cursor;
      this.keep(this.heldRun);
      // Durable once an event appended after this record is: the log's writes commit in order.
      this.unacked.push({ offset: cursor.offset, seq: turns.appended() });
      this.ackDurable();
    });
  }

  /**
   * The record just committed names {@link cursor}: the holder may forget stdout before it, and is
   * told so before the prompt (or answer) recorded with it is released to the agent. Else, with
   * the agent silent in its new turn, nothing acknowledged past the last turn's answer; a gateway
   * killed then left that answer for the next one to re-read, which took it for the end of the
   * turn in flight when it could not read the record (test/agents/held-agent-restart.test.ts,
   * "drops what a turn of an unknown version says…").
   */
  private ackRecorded(): void {
    const cursor = this.cursor;
    if (cursor === undefined) return;
    // Every cursor waiting for its record's commit is at or before this one.
    this.unacked.length = 0;
    this.options.proc()?.ackTo?.(cursor.offset);
  }

  /** Lets the holder forget stdout up to the newest cursor whose record is committed. */
  private ackDurable(): void {
    const published = this.options.turns?.published() ?? 0;
    let upTo: number | undefined;
    while (this.unacked.length > 0 && this.unacked[0]!.seq < published) upTo = this.unacked.shift()!.offset;
    if (upTo !== undefined) this.options.proc()?.ackTo?.(upTo);
  }
}
