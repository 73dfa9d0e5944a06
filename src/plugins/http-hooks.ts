import { SwitchboardError } from "../protocol/index.js";
import { answerHeaders } from "./answer-headers.js";
import { HttpHookResponse } from "./ipc.js";
import type { PluginLimits } from "./limits.js";
import type { Slot } from "./slot.js";
import type { HttpHookCall } from "./types.js";

/**
 * Most requests to one plugin's public hooks in progress at once. Anonymous callers are bounded
 * by the gateway's connection limits; this keeps them from queueing calls into the plugin's pipe
 * without end while it is slow (each waits up to `callTimeoutMs`).
 */
export const PUBLIC_HOOK_CONCURRENCY = 16;
/** What a hook's frame keeps for all but its body: headers (Node allows 16 KiB), query, path. */
const HOOK_FRAME_ROOM_BYTES = 64 * 1024;
/**
 * Headers never forwarded to a plugin's HTTP hook: they may carry the gateway's credentials.
 * `sec-websocket-protocol` among them: the gateway takes a token from it
 * (`switchboard.bearer.<token>`, for clients that cannot set headers) on any request, a plain
 * POST to a hook included, and it was passed on to the plugin as it was.
 */
const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|cookie|sec-websocket-protocol|x-switchboard-.*)$/i;

/**
 * The largest body a hook takes: it travels in one frame to the plugin, as base64 (4 bytes for
 * every 3), with room left for the headers, the query and the rest of the request.
 */
export function hookBodyBytes(limits: PluginLimits): number {
  return Math.floor(((limits.frameBytes - HOOK_FRAME_ROOM_BYTES) * 3) / 4);
}

/** {@link callHook} for a request nobody authenticated: `RATE_LIMITED` past {@link PUBLIC_HOOK_CONCURRENCY}. */
export async function callPublicHook(
  slot: Slot,
  request: HttpHookCall,
  limits: PluginLimits,
): Promise<HttpHookResponse> {
  if (slot.publicCalls >= PUBLIC_HOOK_CONCURRENCY) {
    throw new SwitchboardError(
      "RATE_LIMITED",
      `${PUBLIC_HOOK_CONCURRENCY} requests to this hook are in progress; retry in a moment`,
      { retryAfterSeconds: 1 },
    );
  }
  slot.publicCalls++;
  try {
    return await callHook(slot, request, limits);
  } finally {
    slot.publicCalls--;
  }
}

/**
 * Hands `request` to the plugin's hook, credential headers stripped, and returns what it
 * answered with only the headers a plugin may set. Throws `PLUGIN_UNAVAILABLE` (not running),
 * `NOT_FOUND` (no hook), `PLUGIN_TIMEOUT`, `PLUGIN_FAILED` (an answer the gateway cannot send:
 * invalid, or a header value HTTP cannot carry).
 */
export async function callHook(slot: Slot, request: HttpHookCall, limits: PluginLimits): Promise<HttpHookResponse> {
  const pluginId = slot.id;
  const instance = slot.instance;
  // Not 404: a webhook sender takes that as "gone for good", and this plugin is only restarting.
  if (instance === undefined || slot.state !== "running") {
    const soon = slot.state === "starting" || slot.state === "restarting";
    throw new SwitchboardError(
      "PLUGIN_UNAVAILABLE",
      `plugin "${pluginId}" is not running (${slot.state})${soon ? "; retry in a moment" : `: GET /v1/plugins/${pluginId} says why`}`,
      soon ? { retryAfterSeconds: 1 } : undefined,
    );
  }
  if (!instance.runtime.httpListening) throw new SwitchboardError("NOT_FOUND", `plugin "${pluginId}" has no HTTP hook`);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers))
    if (!CREDENTIAL_HEADERS.test(name)) headers[name.toLowerCase()] = value;
  // The body travels once, raw (base64); the runner parses it as `bodyKind` says.
  const wire = { ...request, headers, rawBody: request.rawBody.toString("base64") };
  const answer = await instance.process.call("http.request", wire, limits.callTimeoutMs).result;
  const parsed = HttpHookResponse.safeParse(answer);
  if (!parsed.success)
    throw new SwitchboardError(
      "PLUGIN_FAILED",
      `plugin "${pluginId}" answered the HTTP hook with an invalid response (want {status: 200-599, headers?, body?})`,
    );
  const safeHeaders = answerHeaders(pluginId, parsed.data.headers ?? {});
  return Object.keys(safeHeaders).length > 0
    ? { ...parsed.data, headers: safeHeaders }
    : { status: parsed.data.status, body: parsed.data.body };
}
