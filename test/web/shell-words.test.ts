import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { joinCommand } from "../../src/core/shell-words.js";
import { splitCommand } from "../../web/src/shell-words.js";

describe("splitCommand (the new-terminal dialog's command line)", () => {
  it("splits on whitespace and keeps quoted words whole", () => {
    expect(splitCommand("  bash   -l ")).toEqual(["bash", "-l"]);
    expect(splitCommand(`sh -c 'echo "hi there"; exit 3'`)).toEqual(["sh", "-c", 'echo "hi there"; exit 3']);
    expect(splitCommand(`printf "a \\"quoted\\" \\\\ word" ''`)).toEqual(["printf", 'a "quoted" \\ word', ""]);
    expect(splitCommand("echo a\\ b c")).toEqual(["echo", "a b", "c"]);
    expect(splitCommand("echo $HOME '$PATH'")).toEqual(["echo", "$HOME", "$PATH"]);
  });

  it("refuses an unclosed quote instead of guessing", () => {
    expect(() => splitCommand("echo 'oops")).toThrow(/unclosed single quote/);
    expect(() => splitCommand('echo "oops')).toThrow(/unclosed double quote/);
  });

  it("gives nothing for a blank line", () => {
    expect(splitCommand("   ")).toEqual([]);
  });
});

describe("joinCommand (how lists, headers and `switchboard ls` show a command)", () => {
  it("shows a command as a line that splits back into the same words", () => {
    expect(joinCommand(["sh", "-c", "echo $FOO; ls", ""])).toBe("sh -c 'echo $FOO; ls' ''");
    const word = fc.string({ unit: fc.constantFrom(..."ab $'\"\\;*~#\t\n()|&é🙂-=./"), maxLength: 12 });
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 6 }), (words) => {
        expect(splitCommand(joinCommand(words))).toEqual(words);
      }),
      { numRuns: 2000 },
    );
  });
});
