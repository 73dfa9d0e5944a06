// Bundles the web UI (web/src) into web/dist with esbuild. Runs as part of `npm run build`.
import { existsSync } from "node:fs";
import { mkdir, copyFile } from "node:fs/promises";
import { build } from "esbuild";

const entry = "web/src/main.ts";
if (!existsSync(entry)) {
  console.log("build-web: no web/src/main.ts yet, skipping");
  process.exit(0);
}
await mkdir("web/dist", { recursive: true });
await build({
  entryPoints: [entry],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: "es2022",
  outfile: "web/dist/app.js",
  loader: { ".css": "css" },
  logLevel: "warning",
});
await copyFile("web/src/index.html", "web/dist/index.html");
console.log("build-web: web/dist written");
