import { createHash } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UI_SESSIONS_FILE } from "../../src/server/gateway.js";
import { TEST_TOKEN, api, browserSignIn, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";

const OTTO = "operator-token-otto-0123456789abcdef";
const tokens = (otto: string) => ({ auth: { tokens: [{ name: "otto", token: otto, role: "operator" as const }] } });

const signIn = async (url: string, token: string) => (await browserSignIn(url, token)).headers;

describe("web UI sign-ins across a gateway restart", () => {
  it("keeps browsers signed in, ends them on logout and when their token is rotated or removed", async () => {
    const dataDir = tempDir();
    const first = await testGateway({ dataDir, config: tokens(OTTO) });
    const [admin, otto, gone] = [
      await signIn(first.url, TEST_TOKEN),
      await signIn(first.url, OTTO),
      await signIn(first.url, OTTO),
    ];
    expect((await api(first.url, "").get("/v1/whoami", gone)).status).toBe(200);
    expect((await api(first.url, "").post("/v1/logout", {}, gone)).status).toBe(200);
    // Hashes only: nothing in the file can be presented as a cookie or a token.
    const file = join(dataDir, UI_SESSIONS_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const saved = readFileSync(file, "utf8");
    const browserSecrets = [admin, otto, gone].flatMap((c) => [
      c.cookie!.split("=")[1]!,
      c["x-switchboard-cookie-key"]!,
    ]);
    for (const secret of browserSecrets.concat(OTTO, TEST_TOKEN)) expect(saved).not.toContain(secret);
    await first.close();

    const second = await testGateway({ dataDir, config: tokens(OTTO) });
    const whoami = (headers: Record<string, string>) => api(second.url, "").get("/v1/whoami", headers);
    expect((await whoami(admin)).json).toMatchObject({ name: "admin", role: "admin" });
    expect((await whoami(otto)).json).toMatchObject({ name: "otto", role: "operator" });
    expect((await whoami(gone)).status).toBe(401);
    await second.close();

    // otto's token rotated: its browsers sign in again; the admin's are untouched.
    const third = await testGateway({ dataDir, config: tokens("operator-token-otto-ROTATED-456789abcdef") });
    expect((await api(third.url, "").get("/v1/whoami", otto)).status).toBe(401);
    expect((await api(third.url, "").get("/v1/whoami", admin)).status).toBe(200);
  });

  it("drops sign-ins saved before cookies had a key: those browsers sign in again", async () => {
    const dataDir = tempDir();
    const hex = (text: string) => createHash("sha256").update(text).digest("hex");
    const old = "a-cookie-from-before-cookie-keys-0123456789";
    const saved = [{ cookie: hex(old), token: hex(TEST_TOKEN), expires: Date.now() + 60_000 }];
    writeFileSync(join(dataDir, UI_SESSIONS_FILE), JSON.stringify(saved), { mode: 0o600 });
    const gw = await testGateway({ dataDir });
    for (const key of [undefined, "", "any-key-at-all"]) {
      const headers = {
        cookie: `sb_session=${old}`,
        ...(key !== undefined ? { "x-switchboard-cookie-key": key } : {}),
      };
      expect((await api(gw.url, "").get("/v1/whoami", headers)).status, String(key)).toBe(401);
    }
    const fresh = await signIn(gw.url, TEST_TOKEN);
    expect((await api(gw.url, "").get("/v1/whoami", fresh)).json).toMatchObject({ name: "admin" });
    const file = JSON.parse(readFileSync(join(dataDir, UI_SESSIONS_FILE), "utf8")) as Array<{ key?: string }>;
    expect(file).toHaveLength(1);
    expect(file[0]!.key).toMatch(/^[0-9a-f]{64}$/);
  });

  it("applies token changes on a config reload: a rotated token's old sign-ins and old token stop working", async () => {
    const dir = tempDir();
    const file = join(dir, "config.json");
    writeFileSync(file, JSON.stringify(tokens(OTTO)));
    const gw = await testGateway({ config: file, watchConfig: false });
    const otto = await signIn(gw.url, OTTO);
    const admin = await signIn(gw.url, TEST_TOKEN);
    const ROTATED = "operator-token-otto-ROTATED-456789abcdef";
    writeFileSync(file, JSON.stringify(tokens(ROTATED)));
    expect(gw.reload()).toMatchObject({ ok: true });
    const whoami = (headers: Record<string, string>) => api(gw.url, "").get("/v1/whoami", headers);
    expect((await whoami(otto)).status).toBe(401);
    expect((await whoami({ authorization: `Bearer ${OTTO}` })).status).toBe(401);
    expect((await whoami({ authorization: `Bearer ${ROTATED}` })).json).toMatchObject({ name: "otto" });
    expect((await whoami(admin)).status).toBe(200);
    // A config whose tokens clash is refused whole: the rotated token keeps working.
    writeFileSync(
      file,
      JSON.stringify({
        auth: { tokens: [...tokens(ROTATED).auth.tokens, { name: "twin", token: ROTATED, role: "viewer" }] },
      }),
    );
    expect(gw.reload()).toMatchObject({ ok: false, error: expect.stringContaining("use the same token") });
    expect((await whoami({ authorization: `Bearer ${ROTATED}` })).json).toMatchObject({ name: "otto" });
  });
});
