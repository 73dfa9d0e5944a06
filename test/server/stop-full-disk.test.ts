import { mkdirSync } from "node:fs";
import { describe, expect, it, onTestFinished } from "vitest";
import { LOG_BACKLOG_PAUSE_BYTES } from "../../src/log/index.js";
import { STOP_UNWRITTEN_WAIT_MS, TERMINATE_GRACE_MS } from "../../src/sessions/session-manager.js";
import { startGateway } from "../../src/server/gateway.js";
import { createLogger } from "../../src/server/logger.js";
import { TEST_TOKEN, api, waitFor } from "../helpers/gateway.js";
import { fillDisk, smallDisk } from "../helpers/disk.js";

describe("stopping on a full disk", () => {
  it("stops within the bound and reports what was not written", async () => {
    const disk = smallDisk("64m");
    const dataDir = `${disk}/data`;
    mkdirSync(dataDir);
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: "info",
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    const gateway = await startGateway({ host: "127.0.0.1", port: 0, token: TEST_TOKEN, dataDir, logger });
    let open = true;
    onTestFinished(async () => {
      if (open) await gateway.close();
    });
    const http = api(gateway.url);
    fillDisk(`${disk}/filler`, 64 * 1024);
    const { json: session } = await http.post("/v1/sessions", { command: ["seq", "1", "4000000"] });
    const log = gateway.core.events.get(session.id as string)!;
    await waitFor(() => log.backlogBytes > LOG_BACKLOG_PAUSE_BYTES, 20_000, "the backlog to fill");
    const started = performance.now();
    await gateway.close();
    open = false;
    const ms = performance.now() - started;
    // The processes' grace, the wait for the disk, and room for a loaded machine.
    expect(ms).toBeLessThan(TERMINATE_GRACE_MS + STOP_UNWRITTEN_WAIT_MS + 2000);
    // One error line says how much was lost.
    const lost = lines.filter((l) => l["msg"] === "event log failed");
    expect(lost).toHaveLength(1);
    expect(lost[0]!["level"]).toBe(50);
    expect((lost[0]!["err"] as { message: string }).message).toMatch(
      /^[1-9]\d* events and records were not written before the log closed, and are lost: .*disk is full/,
    );
    expect(lines.at(-1)?.["msg"]).toBe("gateway stopped");
  }, 120_000);
});
