import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { PUSH_ENDPOINT_MAX_CHARS, SwitchboardError } from "../../protocol/index.js";
import type { PushSubscriptionBody } from "../../protocol/index.js";
import { writePrivateFile } from "../../system/private-file.js";
import { InternalError } from "../../protocol/errors.js";

/** The push subscriptions' file in the data directory: endpoints and their keys, by principal and sign-in. */
export const PUSH_SUBSCRIPTIONS_FILE = "push-subscriptions.json";
/** Most subscriptions of one identity (a device's browsers, a user's): past it its oldest is dropped. */
export const MAX_PUSH_SUBSCRIPTIONS_PER_IDENTITY = 8;
/** Most subscriptions in all: each costs a request per notification; past it LIMIT_EXCEEDED. */
export const MAX_PUSH_SUBSCRIPTIONS = 1024;

/**
 * Hosts a subscription's endpoint may name: the browsers' push services (Chrome and Edge: FCM;
 * Firefox: Mozilla's; Edge on Windows: WNS; Safari: Apple's). The gateway POSTs to the endpoint,
 * so any other host would let a signed-in caller aim it at an address of its choosing.
 * `*.` matches any subdomain.
 */
export const PUSH_SERVICE_HOSTS: readonly string[] = [
  "fcm.googleapis.com",
  "android.googleapis.com",
  "updates.push.services.mozilla.com",
  "*.notify.windows.com",
  "*.push.apple.com",
];

/** Whether `host` (a URL's, without port) is one of `allowed` ({@link PUSH_SERVICE_HOSTS}' form). */
export function isPushServiceHost(host: string, allowed: readonly string[]): boolean {
  const name = host.toLowerCase();
  return allowed.some((entry) => (entry.startsWith("*.") ? name.endsWith(entry.slice(1)) : name === entry));
}

const SavedSubscription = z.strictObject({
  /** The principal that subscribed: its notifications follow what it may see, its buttons what it may steer. */
  principal: z.string().max(300),
  /**
   * The browser sign-in that subscribed (`signInOf`: its key's SHA-256), absent for a bearer
   * token: the subscription is that sign-in's, notified only while it is live and forgotten at
   * its logout.
   */
  signIn: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  endpoint: z.string().max(PUSH_ENDPOINT_MAX_CHARS),
  p256dh: z.string().max(100),
  auth: z.string().max(32),
  since: z.number(),
});
export type PushTarget = z.infer<typeof SavedSubscription>;

/**
 * An entry written before principals, by identity name: dropped when the file is read (its browser
 * subscribes again from Alerts), since a name is no identity and the entry names no sign-in.
 */
const NamedSubscription = z.object({ identity: z.string() });

/**
 * Where each principal's browsers receive notifications, kept in DATA_DIR/push-subscriptions.json
 * (mode 0600). An endpoint is one browser's: subscribing it again, as another identity too,
 * replaces it. A browser's subscription is its sign-in's and ends with it. docs/security.md,
 * "Push notifications".
 */
export class PushSubscriptions {
  private targets: PushTarget[] = [];
  /** How many entries written before principals the file held: dropped (see {@link NamedSubscription}). */
  readonly droppedNamed: number = 0;

  constructor(
    private readonly file: string | undefined,
    private readonly serviceHosts: readonly string[] = PUSH_SERVICE_HOSTS,
  ) {
    if (file === undefined || !existsSync(file)) return;
    try {
      const saved = z.array(z.unknown()).parse(JSON.parse(readFileSync(file, "utf8")));
      const named = saved.filter((e) => NamedSubscription.safeParse(e).success);
      this.targets = z.array(SavedSubscription).parse(saved.filter((e) => !named.includes(e)));
      this.droppedNamed = named.length;
      if (named.length > 0) this.save();
    } catch (error) {
      throw new InternalError(
        `the push subscriptions file ${file} is not valid (${(error as Error).message.slice(0, 200)}): remove it (browsers then subscribe again from Alerts)`,
        { cause: error },
      );
    }
  }

  /** Subscribes a browser for `principal`, with the sign-in it came with (undefined: a bearer token). */
  add(principal: string, signIn: string | undefined, body: PushSubscriptionBody, now: number): void {
    const url = new URL(body.endpoint);
    if (url.protocol !== "https:" || !isPushServiceHost(url.hostname, this.serviceHosts))
      throw new SwitchboardError(
        "VALIDATION_FAILED",
        `endpoint: ${url.hostname} is not a browser's push service (${this.serviceHosts.join(", ")}): subscribe from the page's Alerts, which gives the browser's own endpoint`,
      );
    const others = this.targets.filter((t) => t.endpoint !== body.endpoint);
    const own = others.filter((t) => t.principal === principal);
    const dropped = own.length >= MAX_PUSH_SUBSCRIPTIONS_PER_IDENTITY ? own[0] : undefined;
    const kept = others.filter((t) => t !== dropped);
    if (kept.length >= MAX_PUSH_SUBSCRIPTIONS)
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `${MAX_PUSH_SUBSCRIPTIONS} browsers are subscribed to notifications: unpair devices that are gone, or remove ${PUSH_SUBSCRIPTIONS_FILE} from the data directory`,
      );
    kept.push({
      principal,
      ...(signIn !== undefined ? { signIn } : {}),
      endpoint: body.endpoint,
      p256dh: body.keys.p256dh,
      auth: body.keys.auth,
      since: now,
    });
    this.targets = kept;
    this.save();
  }

  /** Forgets `endpoint` when `principal` subscribed it; true when it did. */
  remove(principal: string, endpoint: string): boolean {
    const before = this.targets.length;
    this.targets = this.targets.filter((t) => !(t.principal === principal && t.endpoint === endpoint));
    if (this.targets.length === before) return false;
    this.save();
    return true;
  }

  /** Forgets every subscription `gone` picks (an unpaired device's, a removed token's, a signed-out browser's). */
  forget(gone: (target: PushTarget) => boolean): number {
    const before = this.targets.length;
    this.targets = this.targets.filter((t) => !gone(t));
    if (this.targets.length !== before) this.save();
    return before - this.targets.length;
  }

  /** Forgets one target the push service said is gone (404 or 410). */
  expired(target: PushTarget): void {
    const before = this.targets.length;
    this.targets = this.targets.filter((t) => t !== target);
    if (this.targets.length !== before) this.save();
  }

  list(): readonly PushTarget[] {
    return this.targets;
  }

  private save(): void {
    if (this.file === undefined) return;
    writePrivateFile(this.file, JSON.stringify(this.targets));
  }
}
