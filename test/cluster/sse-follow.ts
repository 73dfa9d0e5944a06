import { expect } from "vitest";
import { TEST_TOKEN } from "../helpers/gateway.js";

/** Follows a session's SSE stream on `base`, keeping each event's JSON by seq, until `stop` is called. */
export function follow(base: string, id: string) {
  const seen = new Map<number, string>();
  const abort = new AbortController();
  const done = (async () => {
    let since = 0;
    while (!abort.signal.aborted) {
      try {
        const res = await fetch(`${base}/v1/sessions/${id}/stream?since=${since}`, {
          headers: { authorization: `Bearer ${TEST_TOKEN}` },
          signal: abort.signal,
        });
        const decoder = new TextDecoder();
        let text = "";
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true });
          let end;
          while ((end = text.indexOf("\n\n")) >= 0) {
            const data = /^data: (.*)$/m.exec(text.slice(0, end))?.[1];
            text = text.slice(end + 2);
            if (data === undefined) continue;
            const seq = (JSON.parse(data) as { seq: number }).seq;
            expect(seen.has(seq)).toBe(false);
            seen.set(seq, data);
            since = seq;
          }
        }
      } catch (error) {
        // Aborted by stop(); anything else is a dropped stream, resumed from `since`.
        if (abort.signal.aborted) return;
        void error;
      }
    }
  })();
  return {
    seen,
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}
