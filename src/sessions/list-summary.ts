import { listedAgentState } from "../protocol/index.js";
import type { SessionInfo } from "../protocol/index.js";

/** A session as `GET /v1/sessions` shows it: its info, an agent's state without its bulk (see listedAgentState). */
function listedInfo(info: SessionInfo): SessionInfo {
  return info.agentState === undefined ? info : { ...info, agentState: listedAgentState(info.agentState) };
}

/** A session's list entry computed afresh from its info: what {@link ListSummary} keeps (as UTF-8), and its tests' oracle. */
export function listedJson(info: SessionInfo): string {
  return JSON.stringify(listedInfo(info));
}

/**
 * What a session's list entry shows that moves on its own, read at each list: where its log is
 * (published head, first retained seq, output bytes), its last activity, and how many chunks fed
 * its last line. Comparing these is what a list pays per unchanged session.
 */
export interface ListPositions {
  head: number;
  first: number;
  outputBytes: number;
  lastActivityAt: number;
  tailPushes: number;
}

/**
 * A session's entry in `GET /v1/sessions`, serialised once per change rather than once per request
 * (a list of 1,000 serialised every session at each board poll). The entry is taken again when
 * anything it shows changed: its {@link ListPositions}, read at each list, or anything else,
 * which the session tells by {@link changed} (its record, state, attention, control, viewers).
 * test/sessions/list-summary.test.ts holds the evidence: a random run of session operations
 * lists what a fresh serialisation of every session gives.
 */
export class ListSummary {
  // Where the session was when `kept` was taken; filled in place, as a list reads 1,000 of them.
  private readonly at: ListPositions = { head: -1, first: -1, outputBytes: -1, lastActivityAt: -1, tailPushes: -1 };
  private kept: Buffer | undefined;

  /** Something the entry shows changed that its positions do not carry. */
  changed(): void {
    this.kept = undefined;
  }

  /**
   * The entry's JSON as UTF-8: the one kept while nothing it shows changed, else `source.info()`
   * serialised now. Kept as bytes, a list is copied into its answer, never encoded again; the
   * same Buffer while current, which is how a joined answer knows it is (server/http/list-answers.ts).
   */
  entry(now: ListPositions, source: { info(): SessionInfo }): Buffer {
    const { at, kept } = this;
    if (
      kept !== undefined &&
      at.head === now.head &&
      at.first === now.first &&
      at.outputBytes === now.outputBytes &&
      at.lastActivityAt === now.lastActivityAt &&
      at.tailPushes === now.tailPushes
    )
      return kept;
    const entry = ownBytes(listedJson(source.info()));
    at.head = now.head;
    at.first = now.first;
    at.outputBytes = now.outputBytes;
    at.lastActivityAt = now.lastActivityAt;
    at.tailPushes = now.tailPushes;
    this.kept = entry;
    return entry;
  }
}

/**
 * `text` as UTF-8 in memory of its own: `Buffer.from` puts short strings in Node's shared 8 KiB
 * pool, and a kept entry would hold its whole slab for as long as it is kept.
 */
function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}
