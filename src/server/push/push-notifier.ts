import type { Agent } from "node:https";
import type WebPush from "web-push";
import { PUSH_ACTIONS, replaceHiddenChars, toolCallCommand, toolCallPaths } from "../../protocol/index.js";
import type { EventOf, EventType, PushAction, PushPayload, SessionEvent } from "../../protocol/index.js";
import type { Clock } from "../../core/clock.js";
import type { EventLog } from "../../log/event-log.js";
import type { SessionManager } from "../../sessions/session-manager.js";
import { canSee, canSteer } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import { resolveSession } from "../cluster/session-resolver.js";
import type { Logger } from "../ops/logger.js";
import type { PushActionTokens } from "./push-action-tokens.js";
import type { PushSubscriptions, PushTarget } from "./push-subscriptions.js";
import type { VapidKeys } from "./vapid-keys.js";

/** Most push requests on the way at once; past it a notification is dropped (and logged), never queued without bound. */
export const MAX_PUSH_IN_FLIGHT = 64;
/** How long a push service may take to answer one request. */
export const PUSH_SEND_TIMEOUT_MS = 10_000;
/** How long a push service keeps a notification for a browser that is offline (seconds). */
export const PUSH_TTL_SECONDS = 3600;
/** The one line of a notification, in characters: a payload must stay under the services' 4 KiB. */
export const PUSH_LINE_CHARS = 160;
/**
 * The least time between two attention notifications of one session: a bell loop, or a program
 * that rings at every prompt, notifies once a minute at most.
 */
export const ATTENTION_PUSH_INTERVAL_MS = 60_000;
/** Sessions whose last attention notification is remembered; past it the oldest are forgotten. */
export const MAX_ATTENTION_PUSH_SESSIONS = 4096;
/** Who runs the gateway, as push services ask of a sender (RFC 8292 `sub`). */
export const VAPID_SUBJECT = "mailto:switchboard@localhost";

const NOTIFIED: ReadonlySet<EventType> = new Set([
  "permission.request",
  "permission.resolved",
  "elicitation.request",
  "chat.final",
  "chat.error",
  "exit",
  "lost",
  "attention",
]);

/** The attentions that notify: an agent's are notified by their own events (a request, a run's end). */
const NOTIFIED_ATTENTION: ReadonlySet<string> = new Set(["bell", "notification", "quiet"]);

export interface PushNotifierOptions {
  events: Pick<EventLog, "tap">;
  sessions: Pick<SessionManager, "get" | "copyOf">;
  /** The identity of `principal` now (a device unpaired or a token removed since it subscribed: none). */
  identity: (principal: string) => Identity | undefined;
  /** The live browser sign-ins (not signed out, not expired): a subscription one made is notified only while it is. */
  signIns: () => ReadonlySet<string>;
  subscriptions: PushSubscriptions;
  actions: PushActionTokens;
  vapid: VapidKeys;
  clock: Clock;
  logger: Logger;
  /** The HTTPS agent push requests go through (tests: one that trusts their endpoint's certificate). */
  agent?: Agent | undefined;
}

/**
 * Sends a Web Push notification (RFC 8030, encrypted by RFC 8291 in `web-push`) to every
 * subscribed browser whose identity may see the session, when an agent asks for permission or
 * asks a question (an elicitation), a run ends, or the session ends. A permission notification
 * carries a one-time action token when that identity may also answer it; an elicitation's never
 * does (its answer may need content: it is given in the session). docs/ui.md, "Notifications on a phone".
 */
export class PushNotifier {
  private readonly untap: () => void;
  private inFlight = 0;
  private closed = false;
  /** When each session's last attention notification went out (monotonic ms), oldest first. */
  private readonly attentionSent = new Map<string, number>();

  constructor(private readonly options: PushNotifierOptions) {
    this.untap = options.events.tap((sessionId, event) => this.onEvent(sessionId, event), NOTIFIED);
  }

  close(): void {
    this.closed = true;
    this.untap();
  }

  private onEvent(sessionId: string, event: SessionEvent): void {
    if (event.type === "permission.resolved") {
      this.options.actions.settled(sessionId, event.requestId);
      return;
    }
    const session = this.options.sessions.get(sessionId);
    if (session === undefined || this.options.subscriptions.list().length === 0) return;
    // Cluster mode: the node that runs the session notifies, not each node with a copy.
    if (resolveSession(this.options.sessions, session).owner !== undefined) return;
    const notification = payloadOf(session.record.name ?? sessionId, sessionId, event, session.record.agent);
    if (notification === undefined) return;
    if (event.type === "attention" && !this.attentionDue(sessionId)) return;
    let signIns: ReadonlySet<string> | undefined;
    for (const target of this.options.subscriptions.list()) {
      const identity = this.options.identity(target.principal);
      if (identity === undefined || !canSee(identity, session.record)) continue;
      if (target.signIn !== undefined && !(signIns ??= this.options.signIns()).has(target.signIn)) continue;
      const payload = { ...notification };
      if (event.type === "permission.request" && canSteer(identity, session.record)) {
        const options = oneTapOptions(event.options);
        const grant = {
          sessionId,
          requestId: event.requestId,
          principal: identity.principal,
          signIn: target.signIn,
          options,
        };
        const actions = PUSH_ACTIONS.filter((action) => options[action] !== undefined);
        if (actions.length > 0) {
          payload.token = this.options.actions.issue(grant, event.expiresAt, this.options.clock.now());
          payload.actions = actions;
        }
      }
      this.send(target, payload);
    }
  }

  /** Whether an attention notification of `sessionId` may go out now ({@link ATTENTION_PUSH_INTERVAL_MS}); notes it if so. */
  private attentionDue(sessionId: string): boolean {
    const now = this.options.clock.monotonic();
    const last = this.attentionSent.get(sessionId);
    if (last !== undefined && now - last < ATTENTION_PUSH_INTERVAL_MS) return false;
    this.attentionSent.delete(sessionId);
    this.attentionSent.set(sessionId, now);
    if (this.attentionSent.size > MAX_ATTENTION_PUSH_SESSIONS)
      this.attentionSent.delete(this.attentionSent.keys().next().value!);
    return true;
  }

  /**
   * `POST /v1/push/test`: a test notification to the subscriptions `principal` made from the
   * sign-in `signIn` (a browser's own; undefined, a bearer token: all of the principal's).
   * Answers how many were sent.
   */
  test(principal: string, signIn: string | undefined): number {
    const targets = this.options.subscriptions
      .list()
      .filter((t) => t.principal === principal && (signIn === undefined || t.signIn === signIn));
    for (const target of targets)
      this.send(target, {
        reason: "test",
        sessionId: "",
        title: "Switchboard",
        body: "A test notification: this device is notified with the page closed.",
      });
    return targets.length;
  }

  private send(target: PushTarget, payload: PushPayload): void {
    if (this.closed) return;
    const host = new URL(target.endpoint).host;
    if (this.inFlight >= MAX_PUSH_IN_FLIGHT) {
      this.options.logger.warn({ host, reason: payload.reason }, "push notification dropped: too many on the way");
      return;
    }
    this.inFlight++;
    void this.deliver(target, host, payload).finally(() => this.inFlight--);
  }

  private async deliver(target: PushTarget, host: string, payload: PushPayload): Promise<void> {
    const subscription = { endpoint: target.endpoint, keys: { p256dh: target.p256dh, auth: target.auth } };
    let webpush: typeof WebPush | undefined;
    try {
      // Loaded by the first notification: most gateways send none, and it cost every start.
      webpush = (await import("web-push")).default;
      await webpush.sendNotification(subscription, JSON.stringify(payload), {
        vapidDetails: { subject: VAPID_SUBJECT, ...this.options.vapid },
        TTL: PUSH_TTL_SECONDS,
        timeout: PUSH_SEND_TIMEOUT_MS,
        urgency: payload.reason === "permission" || payload.reason === "elicitation" ? "high" : "normal",
        ...(this.options.agent ? { agent: this.options.agent } : {}),
      });
    } catch (error) {
      // The service's answer only: the payload holds an action token, the endpoint a capability.
      const status = webpush && error instanceof webpush.WebPushError ? error.statusCode : undefined;
      if (status === 404 || status === 410) {
        this.options.subscriptions.expired(target);
        this.options.logger.info({ host, status }, "push subscription gone: forgotten");
      } else
        this.options.logger.warn(
          { host, status, error: status === undefined ? (error as Error).message?.slice(0, 200) : undefined },
          "push notification failed",
        );
    }
  }
}

/**
 * The notification of `event` in session `name` (of agent `agent`), or undefined for events that
 * notify nobody. Test: test/security/web-push.test.ts.
 */
export function payloadOf(
  name: string,
  sessionId: string,
  event: SessionEvent,
  agent: string | null = null,
): PushPayload | undefined {
  switch (event.type) {
    case "permission.request":
      // A policy rule answers it at once: nobody needs to.
      if (event.rule !== undefined) return undefined;
      return { reason: "permission", sessionId, title: `${name} needs an answer`, body: permissionLine(event) };
    case "elicitation.request": {
      const who = agent !== null && agent !== name ? `${name} (${agent})` : name;
      const host = event.mode === "url" ? hostOf(event.url) : undefined;
      const visit = event.mode === "url" ? ` · opens ${host ?? "a link that is not a web page"}` : "";
      return {
        reason: "elicitation",
        sessionId,
        title: oneLine(`${who} asks a question`),
        body: oneLine(`${event.message}${visit}`),
      };
    }
    case "attention": {
      const attention = event.attention;
      if (attention === null || !NOTIFIED_ATTENTION.has(attention.reason)) return undefined;
      const body =
        attention.text ?? (attention.reason === "bell" ? "The terminal rang its bell." : "Its output stopped.");
      return { reason: "attention", sessionId, title: `${name} needs you`, body: oneLine(body) };
    }
    case "chat.final":
      return { reason: "finished", sessionId, title: `${name} is done`, body: oneLine(lastLine(event.text)) };
    case "chat.error":
      return { reason: "finished", sessionId, title: `${name} failed`, body: oneLine(event.message) };
    case "exit":
      return { reason: "exited", sessionId, title: `${name} ended`, body: exitLine(event.exitCode, event.signal) };
    case "lost":
      return { reason: "exited", sessionId, title: `${name} was lost`, body: oneLine(event.reason) };
    default:
      return undefined;
  }
}

/** A url's host alone: its path and query may hold a one-time code, which a notification must not show. */
function hostOf(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.host : undefined;
}

/**
 * What a permission would approve, in one line: the title, then the shell command or the files
 * the call touches (test/security/web-push.test.ts), so a phone's lock screen says what it is.
 */
function permissionLine(event: EventOf<"permission.request">): string {
  const command = toolCallCommand(event.toolCall);
  const paths = toolCallPaths(event.toolCall);
  const what =
    command !== undefined
      ? `$ ${command}`
      : paths.length > 0
        ? `${paths.slice(0, 2).join(", ")}${paths.length > 2 ? ` and ${paths.length - 2} more` : ""}`
        : undefined;
  const title = event.title.trim();
  if (what === undefined) return oneLine(title);
  // The title often names the same thing (Claude Code's "Edit src/a.ts"): then it says enough.
  if (title.includes(what.replace(/^\$ /, ""))) return oneLine(title);
  return oneLine(title !== "" ? `${title}: ${what}` : what);
}

function lastLine(text: string): string {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  return lines.at(-1) ?? "The agent finished and waits for a prompt.";
}

function exitLine(exitCode: number | null, signal: string | null): string {
  if (signal !== null) return `Killed by ${signal}.`;
  return exitCode === null ? "Stopped." : `Exited with code ${exitCode}.`;
}

/** One line of at most PUSH_LINE_CHARS, without controls or characters that reorder text. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = replaceHiddenChars(text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim());
  const chars = Array.from(flat);
  return chars.length > PUSH_LINE_CHARS ? `${chars.slice(0, PUSH_LINE_CHARS - 1).join("")}…` : flat;
}

/**
 * The options a notification's one-tap buttons answer: exactly `allow_once` and `reject_once`.
 * An `always` option, even one an agent lists first (as Gemini CLI does), is chosen
 * only by name, in the session's own view; a request without a `once` option of a kind gets no
 * button for it (test/security/web-push.test.ts).
 */
export function oneTapOptions(
  options: readonly { optionId: string; kind: string }[],
): Record<PushAction, string | undefined> {
  return {
    allow: options.find((o) => o.kind === "allow_once")?.optionId,
    reject: options.find((o) => o.kind === "reject_once")?.optionId,
  };
}
