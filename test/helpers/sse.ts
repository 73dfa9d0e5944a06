import { TEST_TOKEN } from "./gateway.js";

/**
 * Reads the SSE stream at `url` (with the test token) message by message, each as its raw text
 * without the blank line; stops once `enough` returns true for the messages so far, or the stream
 * ends. Resolves with the status and the messages read (none unless the status is 200).
 */
export async function readSseMessages(
  url: string,
  enough: (messages: readonly string[]) => boolean,
): Promise<{ status: number; messages: string[] }> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${TEST_TOKEN}` }, signal: abort.signal });
  const messages: string[] = [];
  if (res.status !== 200) {
    await res.arrayBuffer();
    return { status: res.status, messages };
  }
  const decoder = new TextDecoder();
  let text = "";
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = text.indexOf("\n\n")) >= 0) {
        messages.push(text.slice(0, end));
        text = text.slice(end + 2);
        if (enough(messages)) {
          abort.abort();
          return { status: res.status, messages };
        }
      }
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  }
  return { status: res.status, messages };
}

/**
 * The `data` of each unnamed message of a Server-Sent Events response, in order, as its body
 * arrives (named events, such as a `reset`, and comments are skipped).
 */
export async function* sseData(res: Response): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = text.indexOf("\n\n")) >= 0) {
      const message = text.slice(0, end);
      text = text.slice(end + 2);
      const data = message
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      if (data !== "" && !message.includes("event: ")) yield data;
    }
  }
}
