import type { HttpHookCall } from "../../src/plugins/types.js";

/**
 * A hook request as the gateway hands it to the host: `body` sent as JSON (none for null), as
 * `POST /v1/plugins/<id>/http/` with a token would.
 */
export function hookCall(body: unknown, headers: Record<string, string> = {}): HttpHookCall {
  const none = body === null || body === undefined;
  return {
    method: "POST",
    path: "/",
    query: {},
    headers: none ? headers : { "content-type": "application/json", ...headers },
    rawBody: none ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)),
    bodyKind: none ? "none" : "json",
    public: false,
  };
}
