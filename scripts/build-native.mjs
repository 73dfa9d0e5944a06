// Builds the addons in native/ into build/Release with node-gyp, against the Node headers npm
// is set up with (`nodedir`, or node-gyp's own download): the PTY reader thread
// (native/pty_reader.c, see src/sessions/pty-master.ts; Linux only, epoll), JSON text frames
// (native/json_text.c, see src/log/json-text.ts) and the CLI's check that its output's reader is
// gone (native/fd_hangup.c, see src/cli/reader-gone.ts), and the session holder with the check of
// its socket's peer (native/holder.c, native/peer_cred.c, see src/sessions/holder-peer.ts; without
// them sessions run without holders). Runs as the package's install script and in `npm run build`
// (so twice under `npm ci`, a few seconds): an explicit install script keeps npm from running its
// implicit `node-gyp rebuild` for a package with a binding.gyp, whose ~45 lines of gyp output
// `npm ci` printed; here node-gyp's output is printed only when the build fails. Without them
// the gateway still works: every PTY is then read on the event loop, frames are escaped in JS,
// and floods to viewers are slower (docs/benchmarks.md); `logs -f` notices a closed pipe only at
// its next write. So a failed build warns instead of failing the install; the test suite checks
// that all three are in use.
import { spawnSync } from "node:child_process";

// Inside npm scripts npm names its bundled node-gyp; elsewhere, whatever node-gyp is on PATH.
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp, "rebuild"]] : ["node-gyp", ["rebuild"]];
const result = spawnSync(command, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
if (result.status !== 0) {
  process.stderr.write(result.error ? `${result.error.message}\n` : result.stderr);
  console.warn(
    "build-native: WARNING: could not build native/ (needs python3, make and a C compiler);" +
      " PTY output will be read on the event loop only and frames escaped in JS, so floods to viewers will be slower",
  );
}
