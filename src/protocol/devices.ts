import { z } from "zod";
import { displayName } from "./sessions.js";

/** Shortest and longest life of a pairing code; the default is `PAIRING_TTL_DEFAULT_MS`. */
export const PAIRING_TTL_MIN_MS = 30_000;
export const PAIRING_TTL_MAX_MS = 60 * 60_000;
export const PAIRING_TTL_DEFAULT_MS = 10 * 60_000;
/** Where a pairing code travels in a pairing URL: its fragment, which browsers never send (so no log has it). */
export const PAIR_FRAGMENT_PREFIX = "#pair=";
/** A pairing code: 128 random bits, url-safe (22 characters). */
export const PAIRING_CODE_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export const DEVICE_ROLES = ["operator", "viewer"] as const;

/** `POST /v1/devices/pairings`: what the device will be once paired. */
export const PairingRequest = z.strictObject({
  /** Shown in the device list and as the holder of what it controls; unique among devices. */
  name: displayName(64).default("phone"),
  role: z.enum(DEVICE_ROLES).default("operator"),
  /** Glob patterns over session names (or whole ids) the device may see; default every session. */
  sessions: z.array(z.string().min(1).max(200)).min(1).max(100).default(["*"]),
  ttlMs: z.number().int().min(PAIRING_TTL_MIN_MS).max(PAIRING_TTL_MAX_MS).default(PAIRING_TTL_DEFAULT_MS),
  /** The address the device will open (`https://host:port`): the answer then has `url` and its QR code as SVG. */
  base: z
    .string()
    .max(300)
    .regex(/^https?:\/\/[^\s/?#]+$/, "base is a scheme and host as the device reaches the gateway (https://host:port)")
    .optional(),
});
export type PairingRequest = z.input<typeof PairingRequest>;

/** The answer to `POST /v1/devices/pairings`: the code once, never stored in the clear. */
export const Pairing = z.strictObject({
  code: z.string(),
  /** The path to open on the device, the code in its fragment (`/#pair=CODE`). */
  path: z.string(),
  name: z.string(),
  role: z.enum(DEVICE_ROLES),
  sessions: z.array(z.string()),
  expiresAt: z.number(),
  /** With `base`: the whole pairing URL, and its QR code as an SVG document. */
  url: z.string().optional(),
  qrSvg: z.string().optional(),
});
export type Pairing = z.infer<typeof Pairing>;

/** `POST /v1/pair`: a code exchanged for a device credential, or (`signIn`) for a browser sign-in. */
export const PairExchange = z.strictObject({
  code: z.string().max(64),
  /** The browser that opened the pairing URL: answer a sign-in cookie, never the token itself. */
  signIn: z.boolean().optional(),
  /** As in `POST /v1/login`: the key this browser keeps from an earlier sign-in. */
  cookieKey: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/)
    .optional(),
});

/** A paired device as `GET /v1/devices` lists it (admins only). */
export const DeviceListing = z.strictObject({
  id: z.string(),
  name: z.string(),
  role: z.enum(DEVICE_ROLES),
  sessions: z.array(z.string()),
  pairedAt: z.number(),
  /** Its identity's name: what session owners and control holders show (`device:NAME`). */
  identity: z.string(),
  /** Its principal id, `device:ID`: what owns its sessions (a device paired again under its name is another). */
  principal: z.string(),
});
export type DeviceListing = z.infer<typeof DeviceListing>;

/**
 * What the connections of a paired device are told (UNAUTHORIZED) when it is unpaired: the web UI
 * tells a revoked phone so by this message, not as an expired sign-in.
 */
export const DEVICE_REVOKED_MESSAGE = "this device was unpaired (its credential revoked); pair it again to reconnect";

/**
 * What a browser is told (UNAUTHORIZED) when its sign-in cookie is good but the credential it
 * signed in with is gone: a device unpaired, or a token taken out of the config.
 */
export const CREDENTIAL_REMOVED_MESSAGE =
  "the credential this sign-in was made with was removed (a device unpaired, or a token taken out of the config); pair again or sign in again";

/** Prefix of a device's identity name, so that no configured token's name can be a device's. */
export const DEVICE_IDENTITY_PREFIX = "device:";

/** Where an address in `GET /v1/devices/addresses` comes from. */
export const PAIRING_ADDRESS_KINDS = ["listen", "lan", "allowed-host", "tailscale"] as const;

/**
 * An address a device might open the gateway at (`GET /v1/devices/addresses`, admins only):
 * the "Pair a device" dialog and `switchboard pair` offer those a phone can reach.
 */
export const PairingAddress = z.strictObject({
  /** The origin to open, `scheme://host[:port]`: a pairing's `base`. */
  url: z.string(),
  kind: z.enum(PAIRING_ADDRESS_KINDS),
  /** Whether another device can reach it at all: false for loopback (127.0.0.0/8, ::1, localhost). */
  reachable: z.boolean(),
  /** Whether a browser counts it a secure context (https, or localhost): Web Push and installing need one. */
  secure: z.boolean(),
  /** What it takes, when it is not certain to work as is (a proxy in front, a Tailscale Serve). */
  note: z.string().optional(),
});
export type PairingAddress = z.infer<typeof PairingAddress>;
