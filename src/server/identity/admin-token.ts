import { chmodSync, existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { tokenCharsProblem } from "../../protocol/index.js";
import { writePrivateFile } from "../../system/private-file.js";
import { generateToken } from "./identity.js";
import { MIN_TOKEN_CHARS } from "../config/config.js";
import { InternalError } from "../../protocol/errors.js";

/**
 * The token to run with: the given one, else DATA_DIR/token, else a new one written there with
 * mode 0600. A stored token is held to the rule of `--token` (at least {@link MIN_TOKEN_CHARS}
 * characters) and its file narrowed to 0600 if someone left it wider, as the log's files are.
 */
export function resolveAdminToken(dataDir: string, given: string | undefined): { token: string; generated: boolean } {
  if (given !== undefined && given !== "") return { token: given, generated: false };
  const file = join(dataDir, "token");
  if (existsSync(file)) {
    let stored: string;
    try {
      stored = readFileSync(file, "utf8").trim();
    } catch (error) {
      throw new InternalError(
        `cannot read the token file ${file}: ${(error as Error).message}; make it a readable file, or remove it to have a token generated`,
        { cause: error },
      );
    }
    if (stored) {
      if (stored.length < MIN_TOKEN_CHARS)
        throw new InternalError(
          `the token in ${file} has ${stored.length} characters: a token needs at least ${MIN_TOKEN_CHARS}; put a longer one there, or remove the file to have one generated`,
        );
      const problem = tokenCharsProblem(stored);
      if (problem !== undefined)
        throw new InternalError(
          `the token in ${file} cannot be a token: ${problem}; put another there, or remove the file to have one generated`,
        );
      if ((statSync(file).mode & 0o077) !== 0) {
        try {
          chmodSync(file, 0o600);
        } catch (error) {
          throw new InternalError(
            `the token file ${file} can be read by others and could not be narrowed (${(error as Error).message}): chmod 600 it`,
            { cause: error },
          );
        }
      }
      return { token: stored, generated: true };
    }
  }
  const token = generateToken();
  // Written whole or not at all: a full disk left an empty token file behind.
  writePrivateFile(file, `${token}\n`);
  return { token, generated: true };
}
