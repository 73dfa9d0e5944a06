import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeError, resolveTarget } from "../../src/cli/context.js";
import { SwitchboardError } from "../../src/protocol/index.js";
import { EXIT, UsageError } from "../../src/cli/exit-codes.js";
import { hoistGlobalOptions } from "../../src/cli/global-options.js";
import { tempDir } from "../helpers/tmp.js";
import { cli } from "./helpers.js";

const GATEWAY = "http://127.0.0.1:7317";

function tokenFile(content: string): string {
  const file = join(tempDir("switchboard-token-file-"), "token");
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe("--token-file and SWITCHBOARD_TOKEN_FILE", () => {
  it("read the token from the file, trimmed, and name the file as its source", () => {
    const file = tokenFile("  from-the-file-0123456789\n");
    expect(resolveTarget({ url: GATEWAY, "token-file": file }, {})).toEqual({
      target: { url: GATEWAY, token: "from-the-file-0123456789" },
      tokenSource: file,
      urlSource: "--url",
    });
    expect(resolveTarget({ url: GATEWAY }, { SWITCHBOARD_TOKEN_FILE: file }).target.token).toBe(
      "from-the-file-0123456789",
    );
  });

  it("come in order: --token, --token-file, SWITCHBOARD_TOKEN, SWITCHBOARD_TOKEN_FILE, the data dir's file", () => {
    const flagFile = tokenFile("flag-file-token-0123456789");
    const envFile = tokenFile("env-file-token-0123456789");
    const dataDir = tempDir("switchboard-token-dir-");
    writeFileSync(join(dataDir, "token"), "data-dir-token-0123456789");
    const env = { SWITCHBOARD_TOKEN: "env-token-0123456789", SWITCHBOARD_TOKEN_FILE: envFile };
    const token = (values: Record<string, unknown>, e: NodeJS.ProcessEnv) =>
      resolveTarget({ url: GATEWAY, "data-dir": dataDir, ...values }, e).target.token;
    expect(token({ "token-file": flagFile }, env)).toBe("flag-file-token-0123456789");
    expect(token({}, env)).toBe("env-token-0123456789");
    expect(token({}, { SWITCHBOARD_TOKEN_FILE: envFile })).toBe("env-file-token-0123456789");
    expect(token({}, {})).toBe("data-dir-token-0123456789");
    // Named so that a refusal says why the file may be stale (exploratory test: a gateway started
    // with --token left an earlier start's file, and UNAUTHORIZED named only the file).
    const refused = describeError(
      { ...resolveTarget({ url: GATEWAY, "data-dir": dataDir }, {}), json: false },
      new SwitchboardError("UNAUTHORIZED", "bad token"),
    );
    expect(refused).toBe(
      `the gateway at ${GATEWAY} refused the token from ${join(dataDir, "token")} (the data directory's token file: a gateway started with --token or SWITCHBOARD_TOKEN does not use it; pass that token instead) (UNAUTHORIZED)`,
    );
  });

  // Exploratory test (new user): fetch refused to send such a token and the CLI said the
  // gateway was unreachable (exit 3).
  it("refuse a token that cannot travel in an HTTP header, as a command-line mistake", () => {
    const why = "cannot be a token: it has U+00E9 at character 4: a token travels in an HTTP header";
    expect(() => resolveTarget({ url: GATEWAY, token: "caf\u00e9-0123456789abcdef" }, {})).toThrow(`--token ${why}`);
    expect(() => resolveTarget({ url: GATEWAY }, { SWITCHBOARD_TOKEN: "caf\u00e9-0123456789abcdef" })).toThrow(
      `SWITCHBOARD_TOKEN ${why}`,
    );
    const file = tokenFile("caf\u00e9-0123456789abcdef");
    expect(() => resolveTarget({ url: GATEWAY, "token-file": file }, {})).toThrow(`--token-file ${file} ${why}`);
    expect(() => resolveTarget({ url: GATEWAY, token: "caf\u00e9-0123456789abcdef" }, {})).toThrow(UsageError);
  });

  it("refuse a file that is missing, unreadable or empty, and --token given as well, as command-line mistakes", () => {
    const missing = join(tempDir("switchboard-token-none-"), "nope");
    const refusal = (values: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string => {
      try {
        resolveTarget({ url: GATEWAY, ...values }, env);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        return (error as Error).message;
      }
      throw new Error("not refused");
    };
    expect(refusal({ "token-file": missing })).toBe(`--token-file: cannot read ${missing} (ENOENT)`);
    expect(refusal({}, { SWITCHBOARD_TOKEN_FILE: missing })).toBe(
      `SWITCHBOARD_TOKEN_FILE: cannot read ${missing} (ENOENT)`,
    );
    const blank = tokenFile(" \n");
    expect(refusal({ "token-file": blank })).toBe(`--token-file: ${blank} is empty`);
    expect(refusal({ "token-file": blank, token: "t-0123456789abcdef" })).toMatch(/--token and --token-file both/);
    if (process.getuid?.() !== 0) {
      const locked = tokenFile("x-0123456789abcdef");
      chmodSync(locked, 0o000);
      expect(refusal({ "token-file": locked })).toBe(`--token-file: cannot read ${locked} (EACCES)`);
    }
  });

  it("is a global option the CLI takes before the command too, and a bad one exits with the usage code", async () => {
    expect(hoistGlobalOptions(["--token-file", "/run/secrets/t", "ls"])).toEqual([
      "ls",
      "--token-file",
      "/run/secrets/t",
    ]);
    const missing = join(tempDir("switchboard-token-none-"), "nope");
    const r = await cli(["--token-file", missing, "ls", "--json"], { SWITCHBOARD_TOKEN: "" });
    expect(r.code).toBe(EXIT.USAGE);
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: "USAGE", message: `--token-file: cannot read ${missing} (ENOENT)`, exitCode: EXIT.USAGE },
    });
  });
});
