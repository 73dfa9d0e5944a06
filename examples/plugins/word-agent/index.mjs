// An agent provided by a plugin: it answers every prompt by streaming it back word by word
// (as `chat.delta`s), reports one tool call along the way and ends with the final answer.
// Runs go to it like to any other agent once a binding or session names its id.
//
// config: { agentId = "words", delayMs = 20 }
import { setTimeout as sleep } from "node:timers/promises";

export default async function activate(api) {
  const { agentId = "words", delayMs = 20 } = api.config.get();
  await api.agents.register(agentId, async (run) => {
    const words = run.text.split(/\s+/).filter(Boolean);
    run.tool({ toolCallId: `${run.runId}-count`, status: "in_progress", title: "counting words", kind: "think" });
    const out = [];
    for (const word of words) {
      if (run.signal.aborted) break;
      await sleep(delayMs);
      const piece = (out.length ? " " : "") + word;
      out.push(piece);
      // Awaited: while the session's log cannot keep up, the gateway holds the run back here.
      await run.delta(piece);
    }
    run.tool({ toolCallId: `${run.runId}-count`, status: "completed", title: `${words.length} words` });
    return { text: out.join(""), stopReason: run.signal.aborted ? "cancelled" : "end_turn" };
  });
  api.log.info("word agent registered", { agentId });
}
