// Bundles the web UI (web/src) into web/dist with esbuild: app.js (the UI, the SDK and
// xterm.js), app.css (xterm's stylesheet and ours, imported by web/src/main.ts), index.html
// and the favicon. Runs as part of `npm run build`; the test set-up and bench/web.ts run it too.
import { existsSync } from "node:fs";
import { copyFile, mkdir, rm, stat } from "node:fs/promises";
import { build } from "esbuild";

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
/**
 * The protocol's zod schemas come with zod's classic `z` namespace, which re-exports every
 * locale (`z.locales`, ~250 KiB minified) and so defeats tree shaking. The UI only ever
 * uses the English messages zod installs by default, so the locale index is replaced by
 * one that exports `en` alone.
 */
const zodEnglishOnly = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]/.test(args.importer) ? { path: "zod-locales", namespace: "zod-english-only", pluginData: args.resolveDir } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "zod-english-only" }, (args) => ({
      contents: 'export { default as en } from "../locales/en.js";',
      resolveDir: args.pluginData,
      loader: "js",
    }));
  },
};

await build({
  entryPoints: [entry],
  plugins: [zodEnglishOnly],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  platform: "browser",
  outfile: `${OUT}/app.js`,
  loader: { ".css": "css" },
  legalComments: "linked",
  logLevel: "warning",
});
await copyFile(`${SRC}/index.html`, `${OUT}/index.html`);
await copyFile(`${SRC}/favicon.svg`, `${OUT}/favicon.svg`);
const kib = async (file) => ((await stat(`${OUT}/${file}`)).size / 1024).toFixed(0);
console.log(`build-web: ${OUT} written (app.js ${await kib("app.js")} KiB, app.css ${await kib("app.css")} KiB)`);
