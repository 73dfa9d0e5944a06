import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { WorkerOptions } from "node:worker_threads";

/**
 * A worker thread running `name` (a module beside the caller, whose `import.meta.url` is
 * `callerUrl`): its built `name.js` when the caller runs built; from source, the built file
 * `process.env[builtEnv]` names when set (the test run bundles src/ once, for a fraction of tsx's
 * start-up CPU), else `name.ts` through tsx, which a worker does not inherit from vitest's or
 * tsx's loader: the worker registers it first. The screen and search threads start this way.
 */
export function startModuleWorker(callerUrl: string, name: string, builtEnv: string, options: WorkerOptions): Worker {
  if (!callerUrl.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, callerUrl), options);
  const built = process.env[builtEnv];
  if (built) return new Worker(built, options);
  const tsx = pathToFileURL(createRequire(callerUrl).resolve("tsx/esm/api")).href.replace(/\.cjs$/, ".mjs");
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, ...options });
}
