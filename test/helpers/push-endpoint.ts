/**
 * A push service of the test's own, on https://127.0.0.1:PORT: it plays a browser's push
 * service and the browser's keys. Each message it gets is checked as a browser would: the VAPID
 * JWT (RFC 8292) against the gateway's public key, then the body decrypted by RFC 8291
 * (aes128gcm) with node:crypto alone — not with the library that encrypted it.
 */
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify } from "node:crypto";
import { createServer } from "node:https";
import type { Server } from "node:https";
import { Agent } from "node:https";
import type { AddressInfo } from "node:net";
import { selfSigned } from "./self-signed.js";

export interface PushDelivery {
  /** The decrypted payload, parsed. */
  payload: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  /** The VAPID JWT's claims. */
  claims: { aud: string; exp: number; sub: string };
  path: string;
}

export class PushEndpoint {
  readonly received: PushDelivery[] = [];
  /** Requests the endpoint could not verify or decrypt, with why. */
  readonly rejected: string[] = [];
  /** The status the next requests are answered with (201 is a push service's "created"). */
  status = 201;
  private readonly waiters: Array<() => void> = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** An HTTPS agent that trusts this endpoint's certificate: give it to the gateway (`pushAgent`). */
    readonly agent: Agent,
    private readonly ecdh: ReturnType<typeof createECDH>,
    private readonly authSecret: Buffer,
    private readonly vapidPublicKey: () => string,
  ) {}

  /** Starts on 127.0.0.1 port 0; `vapidPublicKey` is the gateway's key, read when a message arrives. */
  static async start(vapidPublicKey: () => string): Promise<PushEndpoint> {
    const { cert, key } = selfSigned();
    const ecdh = createECDH("prime256v1");
    ecdh.generateKeys();
    const authSecret = randomBytes(16);
    const holder: { endpoint?: PushEndpoint } = {};
    const server = createServer({ cert, key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        holder.endpoint!.receive(req.url ?? "/", req.headers, Buffer.concat(chunks));
        res.writeHead(holder.endpoint!.status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    holder.endpoint = new PushEndpoint(server, url, new Agent({ ca: cert }), ecdh, authSecret, vapidPublicKey);
    return holder.endpoint;
  }

  /** A browser's `PushSubscription.toJSON()` for this endpoint at `path`. */
  subscription(path = "/push/browser-1"): { endpoint: string; keys: { p256dh: string; auth: string } } {
    return {
      endpoint: `${this.url}${path}`,
      keys: { p256dh: this.ecdh.getPublicKey().toString("base64url"), auth: this.authSecret.toString("base64url") },
    };
  }

  /** Resolves once `count` messages were received (decrypted or not), or rejects after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 10_000): Promise<PushDelivery[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length + this.rejected.length < count) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `${this.received.length} push messages came of ${count} (rejected: ${this.rejected.join("; ")})`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (this.rejected.length > 0) throw new Error(`push messages rejected: ${this.rejected.join("; ")}`);
    return this.received;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private receive(path: string, headers: PushDelivery["headers"], body: Buffer): void {
    try {
      const claims = this.verifyVapid(String(headers["authorization"] ?? ""));
      if (headers["content-encoding"] !== "aes128gcm")
        throw new Error(`content-encoding ${headers["content-encoding"]}`);
      const payload = JSON.parse(this.decrypt(body).toString("utf8")) as Record<string, unknown>;
      this.received.push({ payload, headers, claims, path });
    } catch (error) {
      this.rejected.push((error as Error).message);
    }
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** RFC 8292: `vapid t=JWT, k=KEY`, the key the gateway's, the JWT signed by it (ES256) for this origin. */
  private verifyVapid(authorization: string): PushDelivery["claims"] {
    const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization);
    if (!m) throw new Error(`no VAPID authorization: ${authorization.slice(0, 40)}`);
    const [, jwt, k] = m;
    if (k !== this.vapidPublicKey()) throw new Error("the VAPID key is not the gateway's");
    const [header, claims, signature] = jwt!.split(".");
    const point = Buffer.from(k!, "base64url");
    const key = createPublicKey({
      key: {
        kty: "EC",
        crv: "P-256",
        x: point.subarray(1, 33).toString("base64url"),
        y: point.subarray(33, 65).toString("base64url"),
      },
      format: "jwk",
    });
    const signed = Buffer.from(`${header}.${claims}`);
    const ok = verify("sha256", signed, { key, dsaEncoding: "ieee-p1363" }, Buffer.from(signature!, "base64url"));
    if (!ok) throw new Error("the VAPID signature does not verify");
    const parsed = JSON.parse(Buffer.from(claims!, "base64url").toString()) as PushDelivery["claims"];
    if (parsed.aud !== this.url) throw new Error(`the VAPID audience is ${parsed.aud}, not ${this.url}`);
    return parsed;
  }

  /** RFC 8291 with RFC 8188's aes128gcm, one record. */
  private decrypt(body: Buffer): Buffer {
    const salt = body.subarray(0, 16);
    const idlen = body[20]!;
    const senderKey = body.subarray(21, 21 + idlen);
    const record = body.subarray(21 + idlen);
    const shared = this.ecdh.computeSecret(senderKey);
    const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), this.ecdh.getPublicKey(), senderKey]);
    const ikm = Buffer.from(hkdfSync("sha256", shared, this.authSecret, keyInfo, 32));
    const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
    const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
    const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
    decipher.setAuthTag(record.subarray(record.length - 16));
    const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    // The last record ends with the delimiter 2, then zero padding.
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    if (padded[end] !== 2) throw new Error("no last-record delimiter");
    return padded.subarray(0, end);
  }
}
