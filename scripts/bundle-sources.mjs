/**
 * `node scripts/bundle-sources.mjs <repo> <out>`: bundles `<repo>`/src for the processes a gateway
 * and its CLI start: `npm run build` writes it over dist/'s tsc output (the CLI and its workers),
 * the test run into a directory of its own (scripts/compile-sources.ts). Each file a process or a
 * worker starts by path is an entry, laid out as dist/ is: `<out>/cli/main.js`,
 * `<out>/screen/screen-worker.js`, `<out>/log/search/search-worker.js`, and the `.mjs` files (the
 * log's writer thread, the plugin runner) copied beside them.
 *
 * One bundle loads as a few chunks instead of ~400 modules (src/ and its packages' files): a
 * gateway's start costs ~40% less CPU (docs/benchmarks.md, "The test suite" and "Scale").
 *
 * A module's `import.meta.url` is the URL it has in dist/'s layout, so the paths it finds from it
 * (web/dist, build/Release, package.json, the workers) are those an unbundled build finds. It is
 * found from the URL of the output file the module lands in, all of which are one directory below
 * `<out>`, so the build can be moved (an installed package).
 *
 * `<out>/cli/main.js` turns on source maps, then imports the bundled CLI: a stack trace (the log's
 * `err.stack`) names the lines of src/, at the cost of reading the maps (docs/benchmarks.md, "Scale").
 */
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { build } from "esbuild";
import { zodEnglishOnly } from "./zod-english-only.mjs";

/** The files started by path, by their output name: a process (`node main.js`) or a worker thread. */
const ENTRIES = {
  "cli/main.bundle": "cli/main.ts",
  "screen/screen-worker": "screen/screen-worker.ts",
  "log/search-worker.bundle": "log/search/search-worker.ts",
};

/**
 * Entries started from two directories down, and what starts them: every output file stays one
 * directory below `<out>` (the `import.meta.url` rewrite needs it), so a one-line file at the path
 * the starter names imports the bundle.
 */
const LAUNCHERS = { "log/search/search-worker.js": 'import "../search-worker.bundle.js";\n' };

/** What `node <out>/cli/main.js` runs: source maps on for the modules it loads, then the CLI. */
const CLI_START = `#!/usr/bin/env node
// Bundled by scripts/bundle-sources.mjs: stack traces name src/ lines (the maps are read as the chunks load).
process.setSourceMapsEnabled(true);
await import("./main.bundle.js");
`;

/**
 * Packages loaded from node_modules as from dist/, not bundled: native addons; thread-stream,
 * which pino's transports start threads with by path (the gateway logs to a stream of its own,
 * src/server/ops/logger.ts, never through a transport); and those imported only when needed
 * (Redis, push, QR codes), which a start does not load. A CommonJS one of these keeps its exports
 * as Node shows them to an `import`: esbuild's interop does not show ioredis's `Redis` export.
 * pino itself is bundled: loaded from node_modules it was ~20 files and ~25 ms of a start.
 */
const EXTERNAL = /^(better-sqlite3|node-pty|thread-stream|ioredis|web-push|qrcode)(\/|$)/;

const [repo, out] = process.argv.slice(2);
if (repo === undefined || out === undefined) {
  console.error("usage: node scripts/bundle-sources.mjs <repo> <out>");
  process.exit(2);
}
const src = join(repo, "src");

/** Each module of src/ sees the `import.meta.url` of its file in the unbundled layout. */
const layout = {
  name: "dist-layout",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) =>
      EXTERNAL.test(args.path) ? { path: args.path, external: true } : undefined,
    );
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const path = relative(src, args.path);
      if (path.startsWith("..")) return undefined;
      // Every output file is one directory below <out> (checked below), so "../" is <out>.
      const url = `../${path.replace(/\.ts$/, ".js").split(sep).join("/")}`;
      return {
        contents: readFileSync(args.path, "utf8").replaceAll(
          "import.meta.url",
          `(new URL(${JSON.stringify(url)}, import.meta.url).href)`,
        ),
        loader: "ts",
      };
    });
  },
};

const { metafile } = await build({
  entryPoints: Object.entries(ENTRIES).map(([name, file]) => ({ in: join(src, file), out: name })),
  outdir: out,
  outbase: src,
  bundle: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  // CommonJS packages bundled into ES modules call `require` for Node's built-ins.
  banner: {
    js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);',
  },
  plugins: [layout, zodEnglishOnly],
  sourcemap: "linked",
  // Stack traces need the mappings only: the maps stay small, and quick to read at each start.
  sourcesContent: false,
  // A third less to read and parse at each start (the gateway's chunk 1.34 MB -> 0.87 MB); names
  // are kept, and stack traces still name src/ lines through the maps.
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
  format: "esm",
  platform: "node",
  target: "node20",
  logLevel: "error",
});
const deep = Object.keys(metafile.outputs).filter((file) => dirname(relative(out, file)).split(sep).length !== 1);
if (deep.length > 0) {
  console.error(`bundle-sources: output files not one directory below ${out}: ${deep.join(", ")}`);
  process.exit(1);
}
writeFileSync(join(out, "cli", "main.js"), CLI_START);
for (const [path, text] of Object.entries(LAUNCHERS)) {
  mkdirSync(dirname(join(out, path)), { recursive: true });
  writeFileSync(join(out, path), text);
  rmSync(join(out, `${path}.map`), { force: true });
}
chmodSync(join(out, "cli", "main.js"), 0o755);
// tsc's map of the main.js written over, when the bundle is written into its output (dist/).
rmSync(join(out, "cli", "main.js.map"), { force: true });
const sources = readdirSync(src, { recursive: true, encoding: "utf8" });
for (const file of sources.filter((f) => f.endsWith(".mjs"))) cpSync(join(src, file), join(out, file));
