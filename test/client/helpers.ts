import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { startGateway } from "../../src/server/gateway.js";
import type { Gateway } from "../../src/server/gateway.js";
import { parseConfig } from "../../src/server/config/config.js";
import type { ConfigInput } from "../../src/server/config/config.js";

export const TEST_TOKEN = "test-token-0123456789abcdef";

/** A fixed, small environment for the processes the tests start. */
export const TEST_ENV: Readonly<Record<string, string>> = {
  PATH: process.env["PATH"] ?? "/usr/bin:/bin",
  LANG: "C.UTF-8",
  SHLVL: "1",
  HOME: process.env["HOME"] ?? "/",
};

export interface TestGateway {
  gateway: Gateway;
  url: string;
  token: string;
  dataDir: string;
  close(): Promise<void>;
}

/** A real gateway on 127.0.0.1:0 with a temporary data dir and a silent log. */
export async function startTestGateway(options: { token?: string; config?: ConfigInput } = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-client-"));
  const gateway = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: options.token ?? TEST_TOKEN,
    logger: pino({ level: "silent" }),
    ...(options.config ? { config: parseConfig(options.config) } : {}),
  });
  let closing: Promise<void> | undefined;
  return {
    gateway,
    url: gateway.url,
    token: gateway.token,
    dataDir,
    close() {
      closing ??= gateway.close().finally(() => rmSync(dataDir, { recursive: true, force: true }));
      return closing;
    },
  };
}

export { FaultProxy } from "../helpers/fault-proxy.js";

/** A process that prints `1\n2\n...N\n` in bursts over roughly `ms` milliseconds. */
export function countingCommand(lines: number, ms: number): string[] {
  const ticks = Math.max(1, Math.round(ms / 10));
  const perTick = Math.ceil(lines / ticks);
  const script = `let i=0;const t=setInterval(()=>{for(let k=0;k<${perTick}&&i<${lines};k++)process.stdout.write(String(++i)+"\\n");if(i>=${lines})clearInterval(t)},10)`;
  return [process.execPath, "-e", script];
}

export function countingText(lines: number): string {
  let out = "";
  for (let i = 1; i <= lines; i++) out += `${i}\n`;
  return out;
}
