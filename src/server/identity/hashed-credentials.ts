import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { InternalError } from "../../protocol/errors.js";
import { writePrivateFile } from "../../system/private-file.js";
import { generateToken, sha256 } from "./identity.js";

/*
 * A store of bearer credentials the gateway hands out (paired devices, share links) keeps each as
 * a random id and its secret's SHA-256, never the secret, in a JSON file of the data directory
 * written mode 0600 (docs/security.md, "Device credentials", "Share links").
 */

/** What every kept credential has: its id, and its secret's SHA-256 in hex. */
export interface HashedRecord {
  id: string;
  tokenSha256: string;
}

/** The two fields of a kept credential, as the stores' schemas check them. */
export const HASHED_RECORD_FIELDS = {
  id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/),
  tokenSha256: z.string().regex(/^[0-9a-f]{64}$/),
};

/** A new credential: its id, its token (shown once) and the hash kept of it. */
export function newCredential(): HashedRecord & { token: string } {
  const token = generateToken();
  return { id: randomBytes(9).toString("base64url"), token, tokenSha256: sha256(token).toString("hex") };
}

/** The digest the token registry compares a presented token's against. */
export function hashOf(record: HashedRecord): Buffer {
  return Buffer.from(record.tokenSha256, "hex");
}

/** `record` without its hash: what a listing may show. */
export function withoutHash<T extends HashedRecord>(record: T): Omit<T, "tokenSha256"> {
  const { tokenSha256: _hash, ...listing } = record;
  return listing;
}

/**
 * What `file` keeps (none when there is no file). Throws when it exists but is not such a file,
 * saying what to do (`remedy`): credentials must not vanish, nor come back, silently.
 */
export function readCredentialFile<T>(
  file: string | undefined,
  schema: z.ZodType<T>,
  words: { what: string; remedy: string },
): T[] {
  if (file === undefined || !existsSync(file)) return [];
  try {
    return z.array(schema).parse(JSON.parse(readFileSync(file, "utf8")));
  } catch (error) {
    throw new InternalError(
      `the ${words.what} file ${file} is not valid (${(error as Error).message.slice(0, 200)}): restore it, or remove it to ${words.remedy}`,
      { cause: error },
    );
  }
}

/** Writes `records` to `file` (mode 0600); nothing without a file (kept in memory only). */
export function writeCredentialFile(file: string | undefined, records: readonly HashedRecord[]): void {
  if (file === undefined) return;
  writePrivateFile(file, JSON.stringify(records));
}
