// Gaps of Node 20's permission model, closed before plugin code runs (defence in depth, not a
// boundary — see docs/plugins.md): signals to other processes (the gateway is process.ppid), the
// inspector of another process opened by SIGUSR1, diagnostic reports written to any directory,
// native addons, and re-prioritising other processes.
import os from "node:os";
import { syncBuiltinESMExports } from "node:module";

function accessDenied(what) {
  const error = new Error(`Access to this API has been restricted: ${what} (plugin sandbox)`);
  error.code = "ERR_ACCESS_DENIED";
  return error;
}

/**
 * Closes them: replaces `process._kill` (behind `process.kill`), `process.report`,
 * `process.dlopen`, `process._debugProcess` and `os.setPriority`, and makes
 * `import { setPriority } from "node:os"` see the guarded one too (`syncBuiltinESMExports`).
 */
export function harden() {
  const rawKill = process._kill;
  const guardedKill = function _kill(pid, signal) {
    if (pid !== process.pid) throw accessDenied("process.kill of another process");
    return rawKill.call(process, pid, signal);
  };
  Object.defineProperty(process, "_kill", { value: guardedKill, writable: false, configurable: false });
  const deniedReport = () => {
    throw accessDenied("process.report");
  };
  const reportStub = Object.freeze(
    Object.defineProperties(
      { writeReport: deniedReport, getReport: deniedReport },
      Object.fromEntries(
        [
          "directory",
          "filename",
          "compact",
          "signal",
          "reportOnFatalError",
          "reportOnSignal",
          "reportOnUncaughtException",
        ].map((name) => [name, { get: () => undefined, set: deniedReport, enumerable: true }]),
      ),
    ),
  );
  Object.defineProperty(process, "report", { value: reportStub, writable: false, configurable: false });
  Object.defineProperty(process, "dlopen", {
    value: () => {
      throw accessDenied("process.dlopen");
    },
    writable: false,
    configurable: false,
  });
  // `process._debugProcess(pid)` sends SIGUSR1 to any process: the gateway (process.ppid) would
  // open its inspector on 127.0.0.1:9229, where the plugin could run code in it. (`_debugEnd`
  // and the profiler idle notifier act on this process only.)
  Object.defineProperty(process, "_debugProcess", {
    value: () => {
      throw accessDenied("process._debugProcess");
    },
    writable: false,
    configurable: false,
  });
  const rawSetPriority = os.setPriority;
  const guardedSetPriority = function setPriority(pid, priority) {
    if (priority === undefined) return rawSetPriority(pid);
    if (pid !== 0 && pid !== process.pid) throw accessDenied("os.setPriority of another process");
    return rawSetPriority(pid, priority);
  };
  Object.defineProperty(os, "setPriority", { value: guardedSetPriority, writable: false, configurable: false });
  syncBuiltinESMExports();
}
