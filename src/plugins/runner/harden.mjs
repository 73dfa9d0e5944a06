// Gaps of Node 20's permission model, closed before plugin code runs (defence in depth, not a
// boundary — see docs/plugins.md): signals to other processes (the gateway is process.ppid), the
// inspector of another process opened by SIGUSR1, diagnostic reports written to any directory,
// native addons, and re-prioritising other processes.
//
// The guards trust nothing plugin code can redefine once it runs: this process's pid is read
// before (a plugin may redefine `process.pid` as `process.ppid`), and the real functions are
// called through `Reflect.apply` taken here (`Function.prototype.call` would hand them to a
// plugin that replaced it). Tested by test/plugins/signal-escape.test.ts.
import os from "node:os";
import { syncBuiltinESMExports } from "node:module";

const { apply } = Reflect;
const { defineProperty } = Object;
const NativeError = Error;

function accessDenied(what) {
  const error = new NativeError(`Access to this API has been restricted: ${what} (plugin sandbox)`);
  error.code = "ERR_ACCESS_DENIED";
  return error;
}

/**
 * Closes them: replaces `process._kill` (behind `process.kill`), `process.report`,
 * `process.dlopen`, `process._debugProcess` and `os.setPriority`, and makes
 * `import { setPriority } from "node:os"` see the guarded one too (`syncBuiltinESMExports`).
 */
export function harden() {
  const ownPid = process.pid;
  const rawKill = process._kill;
  // Only this process: not the gateway, nor a process group (0, -pgid) or every process (-1).
  // The strict comparison refuses a string or an object that would convert to the pid.
  const guardedKill = function _kill(pid, signal) {
    if (pid !== ownPid) throw accessDenied("process.kill of another process");
    return apply(rawKill, process, [pid, signal]);
  };
  defineProperty(process, "_kill", { value: guardedKill, writable: false, configurable: false });
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
  defineProperty(process, "report", { value: reportStub, writable: false, configurable: false });
  defineProperty(process, "dlopen", {
    value: () => {
      throw accessDenied("process.dlopen");
    },
    writable: false,
    configurable: false,
  });
  // `process._debugProcess(pid)` sends SIGUSR1 to any process: the gateway (process.ppid) would
  // open its inspector on 127.0.0.1:9229, where the plugin could run code in it. (`_debugEnd`
  // and the profiler idle notifier act on this process only.)
  defineProperty(process, "_debugProcess", {
    value: () => {
      throw accessDenied("process._debugProcess");
    },
    writable: false,
    configurable: false,
  });
  const rawSetPriority = os.setPriority;
  const guardedSetPriority = function setPriority(pid, priority) {
    if (priority === undefined) return apply(rawSetPriority, undefined, [pid]);
    if (pid !== 0 && pid !== ownPid) throw accessDenied("os.setPriority of another process");
    return apply(rawSetPriority, undefined, [pid, priority]);
  };
  defineProperty(os, "setPriority", { value: guardedSetPriority, writable: false, configurable: false });
  syncBuiltinESMExports();
}
