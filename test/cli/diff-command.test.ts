import { describe, expect, it } from "vitest";
import { colorPatch } from "../../src/cli/diff-command.js";

// `switchboard diff` on a terminal: git's colors (test/gateway/file-changes.test.ts has the plain patch).
describe("colorPatch", () => {
  it("colors headers, hunks, added and removed lines, and leaves context and text alone", () => {
    const patch =
      "# a.bin: binary change, not in this patch\ndiff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,2 +1,2 @@\n keep\n-old\n+new\n";
    expect(colorPatch(patch).split("\n")).toEqual([
      "\x1b[1m# a.bin: binary change, not in this patch\x1b[0m",
      "\x1b[1mdiff --git a/a b/a\x1b[0m",
      "\x1b[1m--- a/a\x1b[0m",
      "\x1b[1m+++ b/a\x1b[0m",
      "\x1b[36m@@ -1,2 +1,2 @@\x1b[0m",
      " keep",
      "\x1b[31m-old\x1b[0m",
      "\x1b[32m+new\x1b[0m",
      "",
    ]);
  });
});
