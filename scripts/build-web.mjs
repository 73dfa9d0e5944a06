// Bundles the web UI (web/src) into web/dist with esbuild: app-<hash>.js (the UI, the SDK and
// xterm.js), app-<hash>.css (xterm's stylesheet and ours, imported by web/src/main.ts),
// index.html pointing at them, the favicon, and the installable app's manifest, icons and
// service worker (sw.js, with the shell's file names filled in). The hash in the names means a browser never
// runs an old bundle from its cache after an upgrade (the gateway lets it cache assets for
// 5 minutes; index.html is never cached). Runs as part of `npm run build`; the test set-up and
// bench/web.ts run it too.
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import zlib, { brotliCompressSync, gzipSync } from "node:zlib";
import { build } from "esbuild";
import { zodEnglishOnly } from "./zod-english-only.mjs";

const SRC = "web/src";
const OUT = "web/dist";
const entry = `${SRC}/main.ts`;
if (!existsSync(entry)) {
  console.log("build-web: no web/src/main.ts yet, skipping");
  process.exit(0);
}
// Start clean so files from an older build are never served.
await rm(OUT, { recursive: true, force: true });
await mkdir(OUT, { recursive: true });
const result = await build({
  entryPoints: [entry],
  plugins: [zodEnglishOnly],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  platform: "browser",
  outdir: OUT,
  entryNames: "app-[hash]",
  metafile: true,
  loader: { ".css": "css" },
  legalComments: "eof",
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file));
const js = outputs.find((f) => f.endsWith(".js"));
const css = outputs.find((f) => f.endsWith(".css"));
if (!js || !css) throw new Error(`build-web: expected a .js and a .css output, got ${outputs.join(", ")}`);
const html = await readFile(`${SRC}/index.html`, "utf8");
const linked = html.replace('src="app.js"', `src="${js}"`).replace('href="app.css"', `href="${css}"`);
if (!linked.includes(js) || !linked.includes(css))
  throw new Error("build-web: index.html must load app.js and app.css");
await writeFile(`${OUT}/index.html`, linked);
await copyFile(`${SRC}/favicon.svg`, `${OUT}/favicon.svg`);
// The installable app: its manifest, icons, and the service worker that keeps the shell offline.
const APP_FILES = ["manifest.webmanifest", "icon-192.png", "icon-512.png"];
for (const file of APP_FILES) await copyFile(`${SRC}/${file}`, `${OUT}/${file}`);
const shell = ["/", `/${js}`, `/${css}`, "/favicon.svg", ...APP_FILES.map((f) => `/${f}`)];
const worker = (await readFile(`${SRC}/sw.js`, "utf8"))
  .replace('const SHELL_FILES = ["/"];', `const SHELL_FILES = ${JSON.stringify(shell)};`)
  .replace('"switchboard-shell-BUILD"', JSON.stringify(`switchboard-shell-${basename(js, ".js").slice(4)}`));
if (!worker.includes(js)) throw new Error("build-web: sw.js must declare SHELL_FILES");
await writeFile(`${OUT}/sw.js`, worker);
// Precompressed copies: the gateway serves the .br or .gz file when the browser accepts it.
for (const file of [js, css, "index.html"]) {
  const body = await readFile(`${OUT}/${file}`);
  await writeFile(
    `${OUT}/${file}.br`,
    brotliCompressSync(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }),
  );
  await writeFile(`${OUT}/${file}.gz`, gzipSync(body, { level: 9 }));
}
const kib = async (file) => ((await stat(`${OUT}/${file}`)).size / 1024).toFixed(0);
console.log(`build-web: ${OUT} written (${js} ${await kib(js)} KiB, ${css} ${await kib(css)} KiB)`);
