import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Globals of plain-JS files run by Node (scripts, the plugin runner, example plugins). */
const nodeGlobals = Object.fromEntries(
  [
    "process",
    "console",
    "performance",
    "Buffer",
    "URL",
    "URLSearchParams",
    "setTimeout",
    "clearTimeout",
    "setInterval",
    "clearInterval",
    "setImmediate",
    "clearImmediate",
    "queueMicrotask",
    "structuredClone",
    "fetch",
    "AbortController",
    "AbortSignal",
    "TextEncoder",
    "TextDecoder",
  ].map((g) => [g, "readonly"]),
);

export default tseslint.config(
  {
    ignores: [
      "dist/",
      ".test-build-*/",
      ".bench-build-*/",
      ".bench-bundle-*/",
      "build/",
      "web/dist/",
      "packages/*/dist/",
      "node_modules/",
      ".switchboard/",
      "coverage/",
      ".bench-tmp/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-empty": ["error", { allowEmptyCatch: false }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    languageOptions: { globals: nodeGlobals },
  },
  {
    // Tests read loosely typed JSON answers; their assertions check the shape.
    files: ["test/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
  {
    files: ["src/protocol/**", "src/core/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["node:*"], message: "protocol and core stay pure: no node: imports" }] },
      ],
    },
  },
);
