import { createECDH } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { writePrivateFile } from "../../system/private-file.js";
import { InternalError } from "../../protocol/errors.js";

/** The gateway's VAPID key pair in the data directory (mode 0600): push services know the gateway by it. */
export const VAPID_FILE = "vapid.json";

const VapidKeys = z.strictObject({
  publicKey: z.string().regex(/^[A-Za-z0-9_-]{87}$/),
  privateKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
});
export type VapidKeys = z.infer<typeof VapidKeys>;

/**
 * The VAPID keys (RFC 8292) of DATA_DIR/vapid.json, made on first use. Browsers bind a
 * subscription to the public key, so a new pair would orphan every subscription: a file that
 * is not a key pair is an error to fix, never silently replaced.
 */
export function loadVapidKeys(file: string): VapidKeys {
  if (!existsSync(file)) {
    const keys = newKeyPair();
    writePrivateFile(file, JSON.stringify(keys));
    return keys;
  }
  try {
    return VapidKeys.parse(JSON.parse(readFileSync(file, "utf8")));
  } catch (error) {
    throw new InternalError(
      `the VAPID key file ${file} is not valid (${(error as Error).message.slice(0, 200)}): restore it, or remove it (every browser then subscribes to notifications again)`,
      { cause: error },
    );
  }
}

/**
 * A P-256 key pair as web-push's `generateVAPIDKeys` makes one (the uncompressed public point,
 * the private scalar padded to 32 bytes, both base64url), without loading web-push at every start.
 */
function newKeyPair(): VapidKeys {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const privateKey = Buffer.alloc(32);
  const scalar = ecdh.getPrivateKey();
  scalar.copy(privateKey, 32 - scalar.length);
  return { publicKey: ecdh.getPublicKey().toString("base64url"), privateKey: privateKey.toString("base64url") };
}
