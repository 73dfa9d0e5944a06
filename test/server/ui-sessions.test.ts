import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UI_SESSIONS_FILE } from "../../src/server/gateway.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";

const OTTO = "operator-token-otto-0123456789abcdef";
const tokens = (otto: string) => ({ auth: { tokens: [{ name: "otto", token: otto, role: "operator" as const }] } });

async function signIn(url: string, token: string): Promise<string> {
  const r = await api(url, "").post("/v1/login", { token });
  expect(r.status).toBe(200);
  return (r.headers.get("set-cookie") ?? "").split(";")[0]!;
}

describe("web UI sign-ins across a gateway restart", () => {
  it("keeps browsers signed in, ends them on logout and when their token is rotated or removed", async () => {
    const dataDir = tempDir();
    const first = await testGateway({ dataDir, config: tokens(OTTO) });
    const [admin, otto, gone] = [
      await signIn(first.url, TEST_TOKEN),
      await signIn(first.url, OTTO),
      await signIn(first.url, OTTO),
    ];
    expect((await api(first.url, "").get("/v1/whoami", { cookie: gone })).status).toBe(200);
    expect((await api(first.url, "").post("/v1/logout", {}, { cookie: gone })).status).toBe(200);
    // Hashes only: nothing in the file can be presented as a cookie or a token.
    const file = join(dataDir, UI_SESSIONS_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const saved = readFileSync(file, "utf8");
    for (const secret of [admin, otto, gone].map((c) => c.split("=")[1]!).concat(OTTO, TEST_TOKEN))
      expect(saved).not.toContain(secret);
    await first.close();

    const second = await testGateway({ dataDir, config: tokens(OTTO) });
    const whoami = (cookie: string) => api(second.url, "").get("/v1/whoami", { cookie });
    expect((await whoami(admin)).json).toMatchObject({ name: "admin", role: "admin" });
    expect((await whoami(otto)).json).toMatchObject({ name: "otto", role: "operator" });
    expect((await whoami(gone)).status).toBe(401);
    await second.close();

    // otto's token rotated: its browsers sign in again; the admin's are untouched.
    const third = await testGateway({ dataDir, config: tokens("operator-token-otto-ROTATED-456789abcdef") });
    expect((await api(third.url, "").get("/v1/whoami", { cookie: otto })).status).toBe(401);
    expect((await api(third.url, "").get("/v1/whoami", { cookie: admin })).status).toBe(200);
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
    expect((await whoami({ cookie: otto })).status).toBe(401);
    expect((await whoami({ authorization: `Bearer ${OTTO}` })).status).toBe(401);
    expect((await whoami({ authorization: `Bearer ${ROTATED}` })).json).toMatchObject({ name: "otto" });
    expect((await whoami({ cookie: admin })).status).toBe(200);
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
