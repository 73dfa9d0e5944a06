import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { testGateway } from "../helpers/gateway.js";

describe("the web UI's static files", () => {
  beforeAll(() => {
    if (!existsSync("web/dist/index.html"))
      execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "ignore" });
  }, 120_000);

  it("serves index.html with a strict CSP, compressed when the browser accepts it", async () => {
    const gw = await testGateway();
    const plain = await fetch(`${gw.url}/`, { headers: { "accept-encoding": "identity" } });
    expect(plain.status).toBe(200);
    expect(plain.headers.get("content-security-policy")).toMatch(/script-src 'self'/);
    expect(plain.headers.get("content-encoding")).toBeNull();
    const html = await plain.text();
    const js = /src="(app-[A-Za-z0-9]+\.js)"/.exec(html)?.[1];
    expect(js).toBeDefined();
    const { request } = await import("node:http");
    const encoding = await new Promise<string | undefined>((resolve, reject) => {
      const req = request(`${gw.url}/${js}`, { headers: { "accept-encoding": "gzip, br" } }, (res) => {
        res.resume();
        resolve(res.headers["content-encoding"]);
      });
      req.on("error", reject);
      req.end();
    });
    expect(encoding).toBe("br");
  });

  it("does not serve files outside web/dist", async () => {
    const gw = await testGateway();
    for (const path of ["/../package.json", "/%2e%2e/package.json", "/..%2fpackage.json"]) {
      const r = await fetch(gw.url + path);
      expect(r.status, path).toBe(404);
    }
  });
});
