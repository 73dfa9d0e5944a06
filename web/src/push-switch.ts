import type { HttpClient } from "../../src/client/index.js";

/**
 * This browser's Web Push subscription for the signed-in identity: notifications reach it from
 * the service worker (web/src/sw.js) with the page closed. Needs a service worker, so https or
 * localhost; `supported` says whether this browser can.
 */
export class PushSwitch {
  constructor(private readonly http: HttpClient) {}

  static get supported(): boolean {
    return "serviceWorker" in navigator && "PushManager" in window && window.isSecureContext;
  }

  /** Whether this browser is subscribed now. */
  async isOn(): Promise<boolean> {
    if (!PushSwitch.supported) return false;
    const registration = await navigator.serviceWorker.ready;
    return (await registration.pushManager.getSubscription()) !== null;
  }

  /** Subscribes (the browser asks for the notification permission first) and tells the gateway where to push. */
  async on(): Promise<void> {
    const registration = await navigator.serviceWorker.ready;
    const key = await this.http.pushKey();
    const subscription =
      (await registration.pushManager.getSubscription()) ??
      (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64url(key) }));
    await this.http.subscribePush(subscription.toJSON() as Parameters<HttpClient["subscribePush"]>[0]);
  }

  /** Tells the gateway to stop, then drops the browser's subscription. */
  async off(): Promise<void> {
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.getSubscription();
    if (subscription === null) return;
    await this.http.unsubscribePush(subscription.endpoint);
    await subscription.unsubscribe();
  }
}

function base64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
