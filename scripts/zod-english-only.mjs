/**
 * An esbuild plugin for bundles that carry zod: its classic `z` namespace (and `z.core`)
 * re-exports every message locale (`z.locales`, 64 of them, ~370 KB unminified) and so defeats
 * tree shaking. Nothing here calls `z.config` with a locale: the bundles use the English messages
 * zod installs by default, so the locale index is replaced by one that exports `en` alone. Used by
 * the web UI's build (scripts/build-web.mjs) and the CLI's (scripts/bundle-sources.mjs).
 */
export const zodEnglishOnly = {
  name: "zod-english-only",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]/.test(args.importer)
        ? { path: "zod-locales", namespace: "zod-english-only", pluginData: args.resolveDir }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "zod-english-only" }, (args) => ({
      contents: 'export { default as en } from "../locales/en.js";',
      resolveDir: args.pluginData,
      loader: "js",
    }));
  },
};
