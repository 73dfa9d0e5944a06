import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SESSION_MODES, TIERS } from "../../src/routing/index.js";

const doc = readFileSync(new URL("../../docs/routing.md", import.meta.url), "utf8");

describe("docs/routing.md", () => {
  it("lists the tiers with their exact matchedBy words, in order", () => {
    const listed = [...doc.matchAll(/^\| (\d) +\| `([a-z-]+)` +\|/gm)].map((m) => m[2]);
    expect(listed).toEqual([...TIERS]);
  });

  it("documents every session mode", () => {
    for (const mode of SESSION_MODES) expect(doc).toContain(`| \`${mode}\``);
  });
});
