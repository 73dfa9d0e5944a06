import { validateHeaderValue } from "node:http";
import { SwitchboardError } from "../protocol/index.js";

/**
 * The only response headers a plugin may set. Its answer is served from the gateway's
 * origin, so cookies, CORS, CSP, redirects and content types stay the gateway's to decide
 * (the route sends the body as JSON).
 */
const PLUGIN_RESPONSE_HEADERS = /^(x-(?!switchboard-)[a-z0-9-]+|cache-control|retry-after)$/i;
/**
 * `x-*` headers a plugin may not set all the same, whatever their case: the gateway's own security
 * headers (one from the plugin, `x-frame-options: ALLOWALL`, was sent beside the gateway's), and
 * the ones a reverse proxy in front of the gateway acts on (nginx's `x-accel-*`, `x-sendfile`:
 * serve a file of the proxy's disk instead, cache the answer).
 */
const GATEWAY_RESPONSE_HEADERS =
  /^(x-content-type-options|x-frame-options|x-accel-[a-z0-9-]*|x-sendfile[a-z0-9-]*|x-lighttpd-send-file|x-litespeed-[a-z0-9-]*)$/i;
/** `cache-control` directives that let a shared cache keep an answer. */
const SHARED_CACHE_DIRECTIVES = /^(public|s-maxage(=.*)?)$/i;

/**
 * A plugin's `cache-control`, made private: its answers are authenticated, so no shared cache may
 * keep them (`public` and `s-maxage` are dropped), and one that says neither `no-store` nor
 * `private` gets `private`.
 */
function privateCacheControl(value: string): string {
  const directives = value
    .split(",")
    .map((directive) => directive.trim())
    .filter((directive) => directive !== "" && !SHARED_CACHE_DIRECTIVES.test(directive));
  if (!directives.some((directive) => /^(no-store|private)$/i.test(directive))) directives.unshift("private");
  return directives.join(", ");
}

/**
 * The headers of a plugin's HTTP answer that the gateway sends on, in lower case (a header given
 * twice in different cases is one, the last, as HTTP reads it); throws PLUGIN_FAILED for a value
 * HTTP cannot carry.
 */
export function answerHeaders(pluginId: string, headers: Record<string, string>): Record<string, string> {
  const safeHeaders: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!PLUGIN_RESPONSE_HEADERS.test(name) || GATEWAY_RESPONSE_HEADERS.test(name)) continue;
    // A value HTTP cannot carry (a line break, a control character) failed only when the answer
    // was written: a 500 INTERNAL that blamed the gateway.
    try {
      validateHeaderValue(name, value);
    } catch {
      throw new SwitchboardError(
        "PLUGIN_FAILED",
        `plugin "${pluginId}" answered the HTTP hook with header ${name.toLowerCase()}, whose value HTTP cannot carry (control characters or line breaks)`,
      );
    }
    const lower = name.toLowerCase();
    safeHeaders[lower] = lower === "cache-control" ? privateCacheControl(value) : value;
  }
  return safeHeaders;
}
