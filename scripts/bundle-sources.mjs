/**
 * `node scripts/bundle-sources.mjs <repo> <out>`: bundles `<repo>`/src for the processes the test
 * run starts (scripts/compile-sources.ts; the bench measures src/ compiled file by file, as dist/
 * is, which users run). Each file a process or a worker starts by path is an entry, laid out as
 * dist/ is: `<out>/cli/main.js`, `<out>/screen/screen-worker.js`, `<out>/log/search/search-worker.js`, and the `.mjs` files (the log's
 * writer thread, the plugin runner) copied beside them.
 *
 * One bundle loads as a few chunks instead of ~400 modules (src/ and its packages' files): a
 * gateway's start costs ~40% less CPU (docs/benchmarks.md, "The test suite").
 *
 * A module's `import.meta.url` is set to the URL it has in dist/'s layout, so the paths it finds
 * from it (web/dist, build/Release, package.json, the workers) are those an unbundled build finds.
 */
import { cpSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

/** The files started by path: a process (`node main.js`) or a worker thread. */
const ENTRIES = ["cli/main.ts", "screen/screen-worker.ts", "log/search/search-worker.ts"];

/**
 * Packages loaded from node_modules as from dist/, not bundled: native addons; pino, whose
 * transports start threads by path; and those imported only when needed (Redis, push, QR codes),
 * which a start does not load. A CommonJS one of these keeps its exports as Node shows them to an
 * `import`: esbuild's interop does not show ioredis's `Redis` export.
 */
const EXTERNAL = /^(better-sqlite3|node-pty|pino|pino-[^/]*|thread-stream|ioredis|web-push|qrcode)(\/|$)/;

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
      const url = pathToFileURL(join(out, path.replace(/\.ts$/, ".js"))).href;
      return {
        contents: readFileSync(args.path, "utf8").replaceAll("import.meta.url", JSON.stringify(url)),
        loader: "ts",
      };
    });
  },
};

await build({
  entryPoints: ENTRIES.map((f) => join(src, f)),
  outdir: out,
  outbase: src,
  bundle: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  // CommonJS packages bundled into ES modules call `require` for Node's built-ins.
  banner: {
    js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);',
  },
  plugins: [layout],
  format: "esm",
  platform: "node",
  target: "node20",
  logLevel: "error",
});
const sources = readdirSync(src, { recursive: true, encoding: "utf8" });
for (const file of sources.filter((f) => f.endsWith(".mjs"))) cpSync(join(src, file), join(out, file));
