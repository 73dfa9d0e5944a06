/**
 * How many joined `GET /v1/sessions` answers are kept at once: one per page asked for lately (an
 * admin's whole list, an operator's scope, a share link's one session). Each is at most
 * `LIMITS.SESSIONS_PAGE_BYTES` (4 MiB), so what is kept stays under 16 MiB.
 */
export const LIST_ANSWERS_KEPT = 4;

const LIST_OPEN = Buffer.from('{"sessions":[');
const COMMA = Buffer.from(",");

interface KeptAnswer {
  entries: readonly Buffer[];
  rest: string;
  body: Buffer;
}

/**
 * The answers of `GET /v1/sessions`, kept joined while the page's entries are the very Buffers
 * their sessions keep (sessions/list-summary.ts): a board polling 1,000 quiet sessions gets the
 * same bytes, without an off-heap copy whose growth set the list's p99 (docs/benchmarks.md,
 * "Session list"). A changed entry is a new Buffer, so identity tells a kept answer is current
 * (test/server/list-answers.test.ts).
 */
export class ListAnswers {
  // Most recently used first.
  private readonly kept: KeptAnswer[] = [];

  /** `{"sessions":[` the entries `]` then `rest` (`,"next":…` or nothing) `}`, as UTF-8 JSON. */
  answer(entries: readonly Buffer[], rest: string): Buffer {
    const kept = this.kept;
    for (let i = 0; i < kept.length; i++) {
      const answer = kept[i]!;
      if (answer.rest !== rest || !sameEntries(answer.entries, entries)) continue;
      if (i > 0) {
        kept.splice(i, 1);
        kept.unshift(answer);
      }
      return answer.body;
    }
    const body = joined(entries, rest);
    kept.unshift({ entries, rest, body });
    if (kept.length > LIST_ANSWERS_KEPT) kept.pop();
    return body;
  }
}

function sameEntries(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The answer's bytes, each entry copied once. */
function joined(entries: readonly Buffer[], rest: string): Buffer {
  const parts: Buffer[] = [LIST_OPEN];
  entries.forEach((entry, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(entry);
  });
  parts.push(Buffer.from(`]${rest}}`));
  return Buffer.concat(parts);
}
