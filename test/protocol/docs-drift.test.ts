import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CLIENT_OPS, ERROR_CODES, EVENT_TYPES } from "../../src/protocol/index.js";
import type { GatewayCore } from "../../src/server/context.js";
import { Router } from "../../src/server/http/router.js";
import { registerRoutes } from "../../src/server/routes/index.js";
import { PUBLIC_HOOK_ROUTES } from "../../src/server/routes/plugins.js";

const doc = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");

function section(title: string): string {
  const start = doc.indexOf(title);
  expect(start, `docs/protocol.md has a section ${title}`).toBeGreaterThanOrEqual(0);
  const next = doc.indexOf("\n## ", start + title.length);
  return doc.slice(start, next < 0 ? undefined : next);
}

describe("docs/protocol.md matches the code", () => {
  it("documents every error code with its status, and nothing else", () => {
    const rows = [...section("## Error codes").matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map(
      (m) => [m[1]!, Number(m[2])] as const,
    );
    expect(new Map(rows)).toEqual(new Map(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status])));
  });

  it("documents every HTTP route the server registers, and nothing else", () => {
    const router = new Router();
    registerRoutes(router, {} as GatewayCore);
    const registered = router.list().map((r) => `${r.method} ${r.path}`);
    // Handled before the router (public hooks: before authentication).
    const special = [
      "GET /healthz",
      "POST /v1/login",
      "POST /v1/pair",
      "POST /v1/push/answer",
      ...PUBLIC_HOOK_ROUTES.list().map((r) => `${r.method} ${r.path}`),
    ];
    const documented = [
      ...section("## HTTP routes").matchAll(/^\|\s*(GET|POST|PUT|DELETE)\s*\|\s*`([^`]+)`\s*\|/gm),
    ].map((m) => `${m[1]} ${m[2]}`);
    expect(new Set(documented)).toEqual(new Set([...registered, ...special]));
  });

  it("documents every event type and every client op", () => {
    const events = [...section("## Event types").matchAll(/^\|\s*`([a-z.]+)`\s*\|/gm)].map((m) => m[1]);
    expect(new Set(events)).toEqual(new Set(EVENT_TYPES));
    const ops = [...section("## `/v1/ws`").matchAll(/^\|\s*`([a-z]+)`\s*\|/gm)].map((m) => m[1]);
    for (const op of CLIENT_OPS) expect(ops).toContain(op);
  });
});
