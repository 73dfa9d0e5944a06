import { describe, expect, it } from "vitest";
import type { SessionEvent } from "../../src/client/node.js";
import { Transcript } from "../../src/cli/transcript.js";

const by = { name: "ada", role: "admin" as const };
let seq = 0;
const ev = (e: Record<string, unknown>): SessionEvent => ({ seq: ++seq, ts: 0, ...e }) as unknown as SessionEvent;

describe("Transcript (logs and prompt --wait of agent sessions)", () => {
  it("shows prompts, streamed answers, tool status changes and the final text when nothing streamed", () => {
    let out = "";
    const t = new Transcript({ text: (c) => (out += c), note: (l) => (out += `${l}\n`) });
    const ends = [
      ev({ type: "run.queued", runId: "r1", text: "hi", by, position: 0 }),
      ev({ type: "chat.delta", runId: "r1", text: "hel" }),
      ev({ type: "tool", runId: "r1", toolCallId: "t", status: "pending", title: "Read" }),
      ev({ type: "tool", runId: "r1", toolCallId: "t", status: "pending", title: "Read" }),
      ev({ type: "tool", runId: "r1", toolCallId: "t", status: "completed", title: "Read" }),
      ev({ type: "chat.delta", runId: "r1", text: "lo" }),
      ev({ type: "chat.final", runId: "r1", text: "hello", stopReason: "end_turn" }),
      ev({ type: "run.queued", runId: "r2", text: "again", by, position: 0 }),
      ev({ type: "chat.final", runId: "r2", text: "no deltas", stopReason: "end_turn" }),
      ev({ type: "run.queued", runId: "r3", text: "oops", by, position: 0 }),
      ev({ type: "chat.error", runId: "r3", code: "AGENT_FAILED", message: "it broke" }),
    ].map((e) => t.push(e));
    expect(out).toBe(
      "> hi\nhel\n[tool] Read (pending)\n[tool] Read (completed)\nlo\n> again\nno deltas\n> oops\n[error] AGENT_FAILED: it broke\n",
    );
    expect(ends.filter((e) => e !== undefined)).toEqual([
      { type: "chat.final" },
      { type: "chat.final" },
      { type: "chat.error", code: "AGENT_FAILED", message: "it broke" },
    ]);
  });

  it("shows AGENT_AUTH_REQUIRED as a login to do, not as an error", () => {
    let out = "";
    const t = new Transcript({ text: (c) => (out += c), note: (l) => (out += `${l}\n`) });
    const message = "the agent needs a login before it can work (…). To log in: run `claude /login`. Then prompt again";
    t.push(ev({ type: "run.queued", runId: "r", text: "hi", by, position: 0 }));
    const end = t.push(ev({ type: "chat.error", runId: "r", code: "AGENT_AUTH_REQUIRED", message }));
    expect(out).toBe(`> hi\n[login needed] ${message}\n`);
    expect(end).toEqual({ type: "chat.error", code: "AGENT_AUTH_REQUIRED", message });
  });

  it("shows a prompt queued behind a running one when its run starts, so each prompt is followed by its own answer (regression)", () => {
    let out = "";
    const t = new Transcript({ text: (c) => (out += c), note: (l) => (out += `${l}\n`) });
    for (const e of [
      ev({ type: "run.queued", runId: "a", text: "capital of France?", by, position: 0 }),
      ev({ type: "run.started", runId: "a" }),
      ev({ type: "run.queued", runId: "b", text: "a joke", by, position: 1 }),
      ev({ type: "run.queued", runId: "c", text: "never mind", by, position: 2 }),
      ev({ type: "chat.delta", runId: "a", text: "Par" }),
      ev({ type: "chat.delta", runId: "a", text: "is" }),
      ev({ type: "chat.final", runId: "a", text: "Paris", stopReason: "end_turn" }),
      ev({ type: "run.started", runId: "b" }),
      ev({ type: "chat.final", runId: "b", text: "knock knock", stopReason: "end_turn" }),
      ev({ type: "chat.aborted", runId: "c", by }),
    ])
      t.push(e);
    expect(out).toBe("> capital of France?\nParis\n> a joke\nknock knock\n> never mind\n[aborted by ada]\n");
  });

  it("apart from the notes, the text is exactly the answer of the one run asked for", () => {
    let text = "";
    const notes: Array<[string, boolean]> = [];
    const t = new Transcript(
      { text: (c) => (text += c), note: (l, mid) => notes.push([l, mid]) },
      { runId: "mine", notesApart: true },
    );
    t.push(ev({ type: "chat.delta", runId: "other", text: "not mine" }));
    t.push(ev({ type: "run.queued", runId: "mine", text: "q", by, position: 2 }));
    t.push(ev({ type: "chat.delta", runId: "mine", text: "part" }));
    t.push(ev({ type: "tool", runId: "mine", toolCallId: "t", status: "pending", title: "Edit" }));
    t.push(ev({ type: "chat.delta", runId: "mine", text: "ial" }));
    expect(t.push(ev({ type: "chat.final", runId: "mine", text: "partial", stopReason: "end_turn" }))).toEqual({
      type: "chat.final",
    });
    expect(text).toBe("partial\n");
    // (How many runs are ahead is prompt --wait's to say: run.queued does not count the active one.)
    expect(notes).toEqual([["[tool] Edit (pending)", true]]);
  });

  // Exploratory test: a permission request's line did not say how to answer it (and the CLI
  // could not), the answer's line not what was chosen, and an answer cut short at max_tokens
  // ended like any other.
  it("says how to answer a permission request, what the answer chose, and a stop reason other than end_turn", () => {
    const notes: string[] = [];
    const t = new Transcript(
      { text: () => undefined, note: (l) => notes.push(l) },
      { runId: "mine", notesApart: true, sessionId: "s1" },
    );
    const options = [
      { optionId: "allow", name: "Allow", kind: "allow_once" },
      { optionId: "reject", name: "Reject", kind: "reject_once" },
    ];
    const request = { type: "permission.request", runId: "mine", title: "Edit a.ts?", options, expiresAt: 0 };
    t.push(ev({ ...request, requestId: "q1" }));
    t.push(
      ev({ type: "permission.resolved", runId: "mine", requestId: "q1", outcome: "selected", optionId: "reject", by }),
    );
    t.push(ev({ ...request, requestId: "q2" }));
    t.push(
      ev({
        type: "permission.resolved",
        runId: "mine",
        requestId: "q2",
        outcome: "cancelled",
        optionId: null,
        by: null,
      }),
    );
    t.push(ev({ type: "chat.final", runId: "mine", text: "", stopReason: "max_tokens" }));
    expect(notes).toEqual([
      "[permission] Edit a.ts?: waiting for an answer (Allow / Reject); to answer: switchboard permission s1 q1 allow|reject",
      "[permission] Reject (by ada)",
      "[permission] Edit a.ts?: waiting for an answer (Allow / Reject); to answer: switchboard permission s1 q2 allow|reject",
      "[permission] cancelled",
      "[stopped: max_tokens]",
    ]);
  });
});
