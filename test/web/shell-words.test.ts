import { describe, expect, it } from "vitest";
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
