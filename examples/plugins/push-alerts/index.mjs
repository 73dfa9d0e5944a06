// Push alerts for Switchboard: tells a phone (or a team channel) when a session needs someone —
// an agent asks for permission, an agent finished its prompt, a session ended — by POSTing to a
// webhook in one of three formats:
//
//   ntfy   the body is the message, the title and a link in headers (https://ntfy.sh/<topic>, or
//          a self-hosted ntfy server): the ntfy app on the phone shows it, tab closed or not
//   slack  `{text}` for a Slack (or Mattermost, Discord's /slack) incoming webhook
//   json   `{event, sessionId, session, title, message, url, ts}` for anything else
//
// It needs `readAllSessions` (to see other people's sessions) and outbound network (allowed on
// Node 20; needs `--allow-net` where Node restricts it). It never forwards output or answers
// beyond the one line a notification shows.
//
// config: { url, format = "json", events = ["permission", "finished", "exited"],
//           uiUrl?, headers?, timeoutMs = 5000 }
/** Event types and the alert each one is. */
const ALERTS = { "permission.request": "permission", "chat.final": "finished", exit: "exited", lost: "exited" };
const FORMATS = ["ntfy", "slack", "json"];
/** A notification carries at most this much of a title or of a line from the session. */
const MAX_TEXT = 200;

export default async function activate(api) {
  const config = { format: "json", events: ["permission", "finished", "exited"], timeoutMs: 5000, ...api.config.get() };
  if (typeof config.url !== "string" || !/^https?:\/\//.test(config.url))
    throw new Error(
      'push-alerts: set config.url to the webhook (http:// or https://), e.g. "https://ntfy.sh/my-topic"',
    );
  if (!FORMATS.includes(config.format))
    throw new Error(`push-alerts: config.format is one of ${FORMATS.join(", ")}, not ${JSON.stringify(config.format)}`);
  const wanted = new Set(config.events);
  const types = Object.keys(ALERTS).filter((type) => wanted.has(ALERTS[type]));

  // Posts go out one at a time, in order; a slow webhook delays alerts, never the gateway.
  let queue = Promise.resolve();
  const send = (alert) => {
    queue = queue
      .then(() => post(config, alert))
      .catch((error) => {
        api.log.warn("push alert not delivered", {
          event: alert.event,
          sessionId: alert.sessionId,
          error: String(error),
        });
      });
  };

  await api.events.subscribe(
    { types },
    (event, sessionId) => {
      void describe(api, config, event, sessionId).then(send, (error) =>
        api.log.warn("push alert not built", { sessionId, error: String(error) }),
      );
    },
    { onDropped: (count) => api.log.warn("push alerts dropped (the plugin fell behind)", { count }) },
  );
  api.log.info("push alerts on", { format: config.format, events: [...wanted] });
}

/** The alert for `event` of `sessionId`: what happened, to which session, and where to look. */
async function describe(api, config, event, sessionId) {
  const session = await api.sessions.get(sessionId);
  const name = cut(session?.name ?? (session?.command ?? []).join(" ") ?? "") || session?.agent || sessionId;
  const kind = ALERTS[event.type];
  const url = config.uiUrl ? `${config.uiUrl.replace(/\/+$/, "")}/#/s/${encodeURIComponent(sessionId)}` : null;
  let title;
  let message;
  switch (kind) {
    case "permission":
      title = `${name} needs an answer`;
      message = cut(event.title ?? "The agent asks for permission.");
      break;
    case "finished":
      title = `${name} is done`;
      message = cut(lastLine(event.text ?? "") || "The agent finished and waits for a prompt.");
      break;
    default:
      title = `${name} ended`;
      message =
        event.type === "lost"
          ? "The gateway stopped while it ran."
          : event.signal
            ? `Killed by ${event.signal}`
            : `Exited ${event.exitCode}`;
  }
  return { event: kind, sessionId, session: name, title, message, url, ts: event.ts };
}

/** One POST in the configured format; throws on a refusal so the caller logs it. */
async function post(config, alert) {
  const headers = { ...(config.headers ?? {}) };
  let body;
  if (config.format === "ntfy") {
    // ntfy reads the title, priority, tags and click-through link from headers (ASCII only).
    Object.assign(headers, {
      "content-type": "text/plain; charset=utf-8",
      title: ascii(alert.title),
      priority: alert.event === "permission" ? "high" : "default",
      tags: alert.event === "permission" ? "warning" : alert.event === "finished" ? "white_check_mark" : "stop_sign",
      ...(alert.url ? { click: alert.url } : {}),
    });
    body = alert.message;
  } else if (config.format === "slack") {
    headers["content-type"] = "application/json";
    const link = alert.url ? ` <${alert.url}|open>` : "";
    body = JSON.stringify({ text: `*${slackEscape(alert.title)}*${link}\n${slackEscape(alert.message)}` });
  } else {
    headers["content-type"] = "application/json";
    body = JSON.stringify(alert);
  }
  const response = await fetch(config.url, {
    method: "POST",
    headers,
    body,
    signal: AbortSignal.timeout(config.timeoutMs),
  });
  if (!response.ok) throw new Error(`the webhook answered ${response.status}`);
}

function lastLine(text) {
  const lines = text.split("\n").map((line) => line.trim());
  return lines.filter(Boolean).at(-1) ?? "";
}

function cut(text) {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}

/** HTTP headers carry Latin-1 at most: anything else becomes "?". */
function ascii(text) {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

/** Slack's three control characters in message text. */
function slackEscape(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
