import { z } from "zod";
import { DEVICE_IDENTITY_PREFIX, DEVICE_ROLES, SwitchboardError, principalId } from "../../protocol/index.js";
import type { DeviceListing } from "../../protocol/index.js";
import type { Identity, TokenCredential } from "./identity.js";
import {
  HASHED_RECORD_FIELDS,
  hashOf,
  newCredential,
  readCredentialFile,
  withoutHash,
  writeCredentialFile,
} from "./hashed-credentials.js";

/** The paired devices' file in the data directory: names, rights and token hashes, never a token. */
export const DEVICES_FILE = "devices.json";
/** Most paired devices at once: each is a credential to review; past it, revoke one first. */
export const MAX_DEVICES = 256;

/** What a device is paired as (a pairing code carries it until it is redeemed). */
export interface DeviceGrant {
  name: string;
  role: (typeof DEVICE_ROLES)[number];
  sessions: readonly string[];
}

const SavedDevice = z.strictObject({
  ...HASHED_RECORD_FIELDS,
  name: z.string().min(1).max(64),
  role: z.enum(DEVICE_ROLES),
  sessions: z.array(z.string()).max(100),
  pairedAt: z.number(),
});
type SavedDevice = z.infer<typeof SavedDevice>;

interface Device {
  saved: SavedDevice;
  credential: TokenCredential;
}

/**
 * The paired devices, kept in DATA_DIR/devices.json (mode 0600) by token hash. Each device is the
 * principal `device:ID` (its random id), so a device paired again under a revoked one's name owns
 * nothing of it. Its identity is one object for its whole life, so that revoking it can end
 * exactly the connections opened with it (ConnectionCounter compares identities).
 * docs/security.md, "Device credentials".
 */
export class DeviceStore {
  private readonly devices = new Map<string, Device>();

  /** Throws when the file exists but is not a devices file: devices must not vanish silently. */
  constructor(private readonly file: string | undefined) {
    const saved = readCredentialFile(file, SavedDevice, { what: "devices", remedy: "unpair every device" });
    for (const device of saved) this.devices.set(device.id, { saved: device, credential: credentialOf(device) });
  }

  /** Every device's credential, for the token registry's constant-time comparison. */
  credentials(): TokenCredential[] {
    return [...this.devices.values()].map((d) => d.credential);
  }

  list(): DeviceListing[] {
    return [...this.devices.values()].map((d) => listingOf(d.saved));
  }

  /** Throws DEVICE_NAME_TAKEN when a paired device has `name` (checked when a code is made, and when it is redeemed). */
  checkNameFree(name: string): void {
    if ([...this.devices.values()].some((d) => d.saved.name === name))
      throw new SwitchboardError(
        "DEVICE_NAME_TAKEN",
        `a device named ${name} is already paired: choose another name, or revoke it first (switchboard devices)`,
      );
  }

  /** Pairs a device: its listing and its token (shown once; only its hash is kept). */
  add(grant: DeviceGrant, now: number): { device: DeviceListing; token: string; identity: Identity } {
    this.checkNameFree(grant.name);
    if (this.devices.size >= MAX_DEVICES)
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `${MAX_DEVICES} devices are paired: revoke one before pairing another (switchboard devices revoke ID)`,
      );
    const { token, ...hashed } = newCredential();
    const saved: SavedDevice = {
      ...hashed,
      name: grant.name,
      role: grant.role,
      sessions: [...grant.sessions],
      pairedAt: now,
    };
    const device = { saved, credential: credentialOf(saved) };
    this.devices.set(saved.id, device);
    this.save();
    return { device: listingOf(saved), token, identity: device.credential.identity };
  }

  /** Unpairs a device: its listing and the identity whose connections must end, or DEVICE_NOT_FOUND. */
  remove(id: string): { device: DeviceListing; identity: Identity } {
    const device = this.devices.get(id);
    if (!device) throw new SwitchboardError("DEVICE_NOT_FOUND", `no paired device ${id.slice(0, 64)}`);
    this.devices.delete(id);
    this.save();
    return { device: listingOf(device.saved), identity: device.credential.identity };
  }

  private save(): void {
    writeCredentialFile(
      this.file,
      [...this.devices.values()].map((d) => d.saved),
    );
  }
}

function credentialOf(saved: SavedDevice): TokenCredential {
  return {
    hash: hashOf(saved),
    identity: {
      principal: principalId("device", saved.id),
      name: `${DEVICE_IDENTITY_PREFIX}${saved.name}`,
      role: saved.role,
      sessions: saved.sessions,
      // Sessions stored with its name before principal ids, made once it was paired: a device
      // paired later under that name has none of an earlier one's.
      legacy: { owner: `${DEVICE_IDENTITY_PREFIX}${saved.name}`, since: saved.pairedAt },
    },
  };
}

function listingOf(saved: SavedDevice): DeviceListing {
  return {
    ...withoutHash(saved),
    identity: `${DEVICE_IDENTITY_PREFIX}${saved.name}`,
    principal: principalId("device", saved.id),
  };
}
