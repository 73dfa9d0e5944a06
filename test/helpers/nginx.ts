import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterTest } from "./cleanup.js";
import { sleep } from "./sleep.js";
import { tempDir } from "./tmp.js";

/** Debian's nginx (`apt-get install nginx-light`), the reverse proxy the trusted-proxy tests put in front. */
export const NGINX = "/usr/sbin/nginx";
const READY_MS = 15_000;

/** An nginx this test started on 127.0.0.1 at a free port, in a temp dir of its own. */
export interface TestNginx {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  stop(): Promise<void>;
}

/**
 * Starts nginx (one process, no daemon) with `server` as its one `server {}` block's body after
 * `listen`; `DIR` in it is replaced by the temp dir. Everything it writes stays in that dir.
 */
export async function startNginx(server: string, files: Record<string, string> = {}): Promise<TestNginx> {
  const dir = tempDir("switchboard-nginx-");
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, sub));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o644 });
  let child: ChildProcess | undefined;
  let port = 0;
  // Another process may take the free port before nginx binds it: try a few.
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    writeFileSync(join(dir, "nginx.conf"), config(dir, port, server.replaceAll("DIR", dir)));
    try {
      child = await launch(dir, port);
    } catch (error) {
      if (attempt >= 4) throw error;
    }
  }
  const running = child;
  const nginx: TestNginx = {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      if (running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once("exit", resolve));
      running.kill("SIGKILL");
      await exited;
    },
  };
  afterTest(() => nginx.stop());
  return nginx;
}

function config(dir: string, port: number, server: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
${server}
  }
}
`;
}

/** Runs nginx and resolves once its port accepts connections; rejects with its error log if it exits first. */
async function launch(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(NGINX, ["-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let exit: string | undefined;
  child.once("exit", (code, signal) => (exit = `nginx exited (${code ?? signal})`));
  child.once("error", (error) => (exit = `cannot run ${NGINX}: ${error.message}`));
  const deadline = Date.now() + READY_MS;
  while (exit === undefined) {
    if (await accepts(port)) return child;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx did not listen on ${port} within ${READY_MS} ms: ${stderr}`);
    }
    await sleep(50);
  }
  let log: string;
  try {
    log = readFileSync(join(dir, "error.log"), "utf8");
  } catch (error) {
    // No log written: stderr says why.
    log = String(error);
  }
  throw new Error(`${exit}: ${stderr} ${log.slice(-2000)}`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
