// A webhook channel for Switchboard.
//
// A plugin cannot be trusted with a listening socket of its own (and newer Node versions deny
// network access under the permission model), so the gateway receives the webhook and
// forwards it: a POST to the plugin's HTTP route reaches `api.http.onRequest` below. The
// plugin turns it into an inbound channel message (`api.messages.inbound`, which goes through
// the bindings exactly like `POST /v1/messages`), waits for the run's final answer on the
// event stream and returns it as the HTTP response. When the answer takes longer than
// `replyTimeoutMs` the response is 202 with the run id, and — if `callbackUrl` is configured —
// the answer is POSTed there when it comes (outbound network: allowed on Node 20, needs
// `--allow-net` on Node versions that restrict it; see docs/plugins.md).
//
// config: { channel = "webhook", accountId = "default", secret?, replyTimeoutMs = 8000, callbackUrl? }
// request body: { text: string, peer?: string | {kind, id}, accountId? }
import { timingSafeEqual } from "node:crypto";

/** Finished runs remembered for a waiter that subscribes after the answer already came. */
const RECENT_RUNS = 256;
const TERMINAL = ["chat.final", "chat.error", "chat.aborted"];
/** How long an answer is awaited for the callback after the 202. */
const LATE_ANSWER_MS = 10 * 60_000;

export default async function activate(api) {
  const config = { channel: "webhook", accountId: "default", replyTimeoutMs: 8000, ...api.config.get() };
  const waiters = new Map();
  const recent = new Map();

  const settle = (runId, outcome) => {
    const waiter = waiters.get(runId);
    if (waiter) {
      waiters.delete(runId);
      waiter(outcome);
      return;
    }
    recent.set(runId, outcome);
    if (recent.size > RECENT_RUNS) recent.delete(recent.keys().next().value);
  };

  // Subscribed once, before any message goes out, so no final answer can slip past.
  await api.events.subscribe({ types: TERMINAL }, (event) => settle(event.runId, event));

  const waitFor = (runId, timeoutMs) => {
    const done = recent.get(runId);
    if (done) {
      recent.delete(runId);
      return Promise.resolve(done);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(runId);
        resolve(null);
      }, timeoutMs);
      waiters.set(runId, (event) => {
        clearTimeout(timer);
        resolve(event);
      });
    });
  };

  const postBack = async (run, event) => {
    try {
      const response = await fetch(config.callbackUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ runId: run.runId, sessionId: run.sessionId, ...answer(event) }),
      });
      api.log.info("webhook answer posted back", { runId: run.runId, status: response.status });
    } catch (error) {
      api.log.error("webhook callback failed", { runId: run.runId, error: String(error) });
    }
  };

  await api.http.onRequest(async (request) => {
    if (request.method !== "POST") return { status: 405, body: { error: "POST only" } };
    // At /hooks/<id> (publicHooks) nobody else checked the caller: without a secret, take nothing.
    if (request.public && config.secret === undefined)
      return { status: 401, body: { error: "set a secret in this plugin's config to take public hooks" } };
    if (config.secret !== undefined && !sameSecret(request.headers["x-webhook-secret"], config.secret))
      return { status: 401, body: { error: "bad or missing x-webhook-secret" } };
    const body = request.body ?? {};
    if (typeof body.text !== "string" || body.text.length === 0)
      return { status: 400, body: { error: "text (a non-empty string) is required" } };
    const peer = typeof body.peer === "string" ? { kind: "direct", id: body.peer } : body.peer;
    const run = await api.messages.inbound({
      channel: config.channel,
      accountId: typeof body.accountId === "string" ? body.accountId : config.accountId,
      ...(peer === undefined ? {} : { peer }),
      text: body.text,
    });
    const event = await waitFor(run.runId, config.replyTimeoutMs);
    if (event === null) {
      if (config.callbackUrl !== undefined)
        void waitFor(run.runId, LATE_ANSWER_MS).then((late) => late && postBack(run, late));
      return { status: 202, body: { runId: run.runId, sessionId: run.sessionId, pending: true } };
    }
    return { status: event.type === "chat.final" ? 200 : 502, body: { runId: run.runId, ...answer(event) } };
  });

  api.log.info("webhook channel ready", { channel: config.channel });
  return () => waiters.clear();
}

function answer(event) {
  switch (event.type) {
    case "chat.final":
      return { text: event.text, stopReason: event.stopReason };
    case "chat.error":
      return { error: { code: event.code, message: event.message } };
    default:
      return { error: { code: "ABORTED", message: "the run was aborted" } };
  }
}

function sameSecret(given, expected) {
  if (typeof given !== "string") return false;
  const a = Buffer.from(given);
  const b = Buffer.from(String(expected));
  return a.length === b.length && timingSafeEqual(a, b);
}
