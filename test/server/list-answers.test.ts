/**
 * `GET /v1/sessions` keeps its joined answers (server/http/list-answers.ts) while the page's
 * entries are the ones their sessions keep: any entry taken again, any session added or gone,
 * another page or cursor must answer what a fresh join gives.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LIST_ANSWERS_KEPT, ListAnswers } from "../../src/server/http/list-answers.js";

/** The oracle: the answer joined afresh. */
function freshAnswer(entries: readonly Buffer[], rest: string): string {
  return `{"sessions":[${entries.map((e) => e.toString()).join(",")}]${rest}}`;
}

describe("the session list's kept answers", () => {
  it("answer what a fresh join gives after any run of entry changes, sessions added and gone, and pages", () => {
    type Op =
      | { kind: "change"; n: number; text: string }
      | { kind: "add"; text: string }
      | { kind: "remove"; n: number }
      | { kind: "list"; from: number; count: number; next: boolean };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant("change" as const), n: fc.nat(), text: fc.string({ maxLength: 6 }) }),
      fc.record({ kind: fc.constant("add" as const), text: fc.string({ maxLength: 6 }) }),
      fc.record({ kind: fc.constant("remove" as const), n: fc.nat() }),
      fc.record({
        kind: fc.constant("list" as const),
        from: fc.nat({ max: 3 }),
        count: fc.nat({ max: 8 }),
        next: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const answers = new ListAnswers();
        // Each session's kept entry: a change is a new Buffer, as ListSummary takes one.
        const entries: Buffer[] = [Buffer.from('{"id":"a"}'), Buffer.from('{"id":"b"}')];
        let made = 0;
        const entry = (text: string) => Buffer.from(JSON.stringify({ n: made++, text }));
        for (const o of ops) {
          if (o.kind === "change" && entries.length > 0) entries[o.n % entries.length] = entry(o.text);
          else if (o.kind === "add") entries.push(entry(o.text));
          else if (o.kind === "remove" && entries.length > 0) entries.splice(o.n % entries.length, 1);
          else if (o.kind === "list") {
            // A page as pageOf gives it: a fresh array of the entries kept now.
            const page = entries.slice(o.from, o.from + o.count);
            const rest = o.next ? `,"next":"c${o.from}"` : "";
            const answer = answers.answer(page, rest);
            expect(answer.toString()).toBe(freshAnswer(page, rest));
            JSON.parse(answer.toString());
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives the same bytes, not a copy, while a page's entries stay the ones kept", () => {
    const answers = new ListAnswers();
    const entries = Array.from({ length: 1000 }, (_, i) => Buffer.from(`{"id":"s${i}"}`));
    const first = answers.answer(entries.slice(), "");
    expect(answers.answer(entries.slice(), "")).toBe(first);
    // Other pages in between, up to how many are kept, leave it kept.
    for (let i = 1; i < LIST_ANSWERS_KEPT; i++) answers.answer(entries.slice(i), "");
    expect(answers.answer(entries.slice(), "")).toBe(first);
    // One entry taken again: a new answer with it.
    entries[500] = Buffer.from('{"id":"s500","lastLine":"$ "}');
    const changed = answers.answer(entries.slice(), "");
    expect(changed).not.toBe(first);
    expect(changed.toString()).toBe(freshAnswer(entries, ""));
  });
});
