// Builds the PTY reader thread (native/pty_reader.c, see src/sessions/pty-master.ts) into
// build/Release/pty_reader.node with node-gyp, against the Node headers npm is set up with
// (`nodedir`, or node-gyp's own download). Runs as part of `npm run build` (and so of `npm ci`).
// Without it the gateway still works: every PTY is then read on the event loop, and floods to
// viewers are slower (docs/benchmarks.md). So a failed build warns instead of failing the
// install; the test suite checks that the thread is in use on Linux.
import { spawnSync } from "node:child_process";

if (process.platform !== "linux") {
  console.log("build-native: the PTY reader thread is Linux-only (epoll); PTYs are read on the event loop");
  process.exit(0);
}
// Inside npm scripts npm names its bundled node-gyp; elsewhere, whatever node-gyp is on PATH.
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp, "rebuild"]] : ["node-gyp", ["rebuild"]];
const result = spawnSync(command, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
if (result.status !== 0) {
  process.stderr.write(result.error ? `${result.error.message}\n` : result.stderr);
  console.warn(
    "build-native: WARNING: could not build native/pty_reader.c (needs python3, make and a C compiler);" +
      " PTY output will be read on the event loop only, and floods to viewers will be slower",
  );
}
