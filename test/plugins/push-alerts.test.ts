/**
 * examples/plugins/push-alerts against a real gateway (its plugin processes sandboxed as in
 * production) and a local webhook on 127.0.0.1: the bodies it posts in each format.
 */
import { createServer } from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import type { ConfigInput } from "../../src/server/config/config.js";
import { startGateway } from "../../src/server/gateway.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function webhook(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      received.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

const PLUGIN = join(process.cwd(), "examples/plugins/push-alerts");

/** A gateway running `entries` as its plugins (closed after the test), and its HTTP API. */
async function gatewayWith(
  entries: NonNullable<NonNullable<ConfigInput["plugins"]>["entries"]>,
): Promise<ReturnType<typeof api>> {
  const gateway = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: tempDir(),
    token: TEST_TOKEN,
    logger: createLogger({ level: "silent" }),
    config: { plugins: { entries } },
  });
  onTestFinished(() => gateway.close());
  return api(gateway.url);
}

describe("push alerts plugin (examples/plugins/push-alerts)", () => {
  it("posts a permission request, a finished run and an exit in ntfy, Slack and JSON formats", async () => {
    const hook = await webhook();
    const entry = (format: string) => ({
      path: PLUGIN,
      permissions: { readAllSessions: true },
      config: { url: `${hook.url}/${format}`, format, uiUrl: "http://gw.example:7317/" },
    });
    const http = await gatewayWith({ ntfy: entry("ntfy"), slack: entry("slack"), json: entry("json") });
    for (const id of ["ntfy", "slack", "json"])
      await waitFor(
        async () => (await http.get(`/v1/plugins/${id}`)).json.state === "running",
        15_000,
        `${id} running`,
      );

    const agent = (await http.post("/v1/sessions", { kind: "agent", agent: "echo", name: "helper" })).json.id as string;
    await http.post(`/v1/sessions/${agent}/prompt`, { text: "/permission edit the file" });
    const of = (format: string) => hook.received.filter((r) => r.path === `/${format}`);
    await waitFor(async () => of("json").length === 1, 10_000, "the permission alert");
    const requestId = (await http.get(`/v1/sessions/${agent}/events?types=permission.request`)).json.events[0]
      .requestId as string;
    await http.post(`/v1/sessions/${agent}/permission`, { requestId, optionId: "allow" });
    await waitFor(async () => of("json").length === 2, 10_000, "the finished alert");
    const build = (await http.post("/v1/sessions", { command: ["sh", "-c", "exit 3"], name: "build" })).json
      .id as string;
    await waitFor(async () => ["ntfy", "slack", "json"].every((f) => of(f).length === 3), 10_000, "the exit alerts");

    const link = (id: string) => `http://gw.example:7317/#/s/${encodeURIComponent(id)}`;
    const json = of("json").map((r) => ({ ...JSON.parse(r.body), ts: typeof JSON.parse(r.body).ts }));
    expect(json).toEqual([
      {
        event: "permission",
        sessionId: agent,
        session: "helper",
        title: "helper needs an answer",
        message: "Allow the echo agent to pretend to edit a file?",
        url: link(agent),
        ts: "number",
      },
      {
        event: "finished",
        sessionId: agent,
        session: "helper",
        title: "helper is done",
        message: "Allowed. edit the file",
        url: link(agent),
        ts: "number",
      },
      {
        event: "exited",
        sessionId: build,
        session: "build",
        title: "build ended",
        message: "Exited 3",
        url: link(build),
        ts: "number",
      },
    ]);
    expect(of("json")[0]!.headers["content-type"]).toBe("application/json");

    expect(of("slack").map((r) => JSON.parse(r.body))).toEqual([
      { text: `*helper needs an answer* <${link(agent)}|open>\nAllow the echo agent to pretend to edit a file?` },
      { text: `*helper is done* <${link(agent)}|open>\nAllowed. edit the file` },
      { text: `*build ended* <${link(build)}|open>\nExited 3` },
    ]);

    expect(
      of("ntfy").map((r) => ({
        body: r.body,
        title: r.headers["title"],
        priority: r.headers["priority"],
        tags: r.headers["tags"],
        click: r.headers["click"],
      })),
    ).toEqual([
      {
        body: "Allow the echo agent to pretend to edit a file?",
        title: "helper needs an answer",
        priority: "high",
        tags: "warning",
        click: link(agent),
      },
      {
        body: "Allowed. edit the file",
        title: "helper is done",
        priority: "default",
        tags: "white_check_mark",
        click: link(agent),
      },
      { body: "Exited 3", title: "build ended", priority: "default", tags: "stop_sign", click: link(build) },
    ]);
  });

  it("refuses to start without a webhook url, saying what to set", async () => {
    const http = await gatewayWith({ push: { path: PLUGIN, config: { format: "ntfy" } } });
    // A plugin whose activation throws is restarted after a backoff, and says why meanwhile.
    await waitFor(async () => (await http.get("/v1/plugins/push")).json.lastError !== null, 15_000, "the failure");
    const status = (await http.get("/v1/plugins/push")).json;
    expect(status.state).not.toBe("running");
    expect(status.lastError).toContain("push-alerts: set config.url to the webhook");
  });
});
