import { describe, expect, it } from "vitest";
import type { SessionInfo } from "../../src/client/node.js";
import { formatSessionLine, formatSessionTable } from "../../src/cli/format.js";
import { shellWord } from "../../src/core/shell-words.js";
import { printable } from "../../src/cli/printable.js";
import { sessionInfo } from "../helpers/session-info.js";

const NOW = 1_700_000_000_000;

/** An exited terminal session, ended a few seconds before NOW, with `fields`. */
function session(fields: Partial<SessionInfo>): SessionInfo {
  return sessionInfo("AAAAAAAAAAAAAAAAAAAAAA", {
    kind: "terminal",
    name: null,
    state: "exited",
    command: ["true"],
    cwd: "/",
    pid: 42,
    exitCode: 0,
    createdAt: NOW - 5_000,
    endedAt: NOW - 4_000,
    head: 1,
    lastActivityAt: NOW - 4_000,
    ...fields,
  });
}

describe("printable", () => {
  it("escapes C0, DEL and C1 controls and leaves other text alone", () => {
    expect(printable("a\x1b]0;t\x07\x1b[2J\n\r\t\x00\x7f\x9b é ✓")).toBe(
      "a\\e]0;t\\x07\\e[2J\\n\\r\\t\\x00\\x7f\\x9b é ✓",
    );
  });

  // Trojan Source (CVE-2021-42574): "invoice\u202Efdp.exe" shows as "invoiceexe.pdf".
  it("escapes bidirectional controls and invisible characters, and leaves scripts and emoji alone", () => {
    expect(printable("invoice\u202Efdp.exe \u2066x\u2069 a\u200Bb \u{E0041}")).toBe(
      "invoice\\u{202e}fdp.exe \\u{2066}x\\u{2069} a\\u{200b}b \\u{e0041}",
    );
    expect(printable("שלום café 日本 👩\u200D💻 می\u200Cخواهم")).toBe("שלום café 日本 👩\u200D💻 می\u200Cخواهم");
  });
});

describe("formatSessionTable", () => {
  // Regression (CLI audit): a name like $'evil\e]0;pwned\a\e[2J' retitled and cleared the
  // terminal, and a newline broke the table. (Gateways now refuse such names; older logs may hold them.)
  it("escapes control characters in names and commands and keeps the columns aligned", () => {
    const table = formatSessionTable(
      [
        session({ name: "evil\x1b]0;pwned\x07\x1b[2J\nrow", command: ["sh", "-c", "\x9b31m"] }),
        session({ id: "BBBBBBBBBBBBBBBBBBBBBB", name: "b", command: ["true"] }),
      ],
      NOW,
    );
    const lines = table.trimEnd().split("\n");
    expect(lines).toEqual([
      "ID                      NAME                          KIND      STATE   PID  EXIT  AGE  COMMAND",
      "AAAAAAAAAAAAAAAAAAAAAA  evil\\e]0;pwned\\x07\\e[2J\\nrow  terminal  exited  42   0     5s   sh -c '\\x9b31m'",
      "BBBBBBBBBBBBBBBBBBBBBB  b                             terminal  exited  42   0     5s   true",
    ]);
  });

  // Exploratory test (new user): agents.md said the session list shows an agent `waiting` for a
  // permission answer; `ls` said `running`.
  it("shows what a running agent session does, and * when someone holds control", () => {
    const agent = (activity: "idle" | "working" | "waiting", controller: string | null = null) =>
      session({
        kind: "agent",
        state: "running",
        pid: null,
        exitCode: null,
        controller,
        run: { active: null, queued: 0, activity },
      });
    const states = formatSessionTable(
      [
        agent("idle"),
        agent("working"),
        agent("waiting", "ada"),
        session({ state: "running", exitCode: null, controller: "ada" }),
      ],
      NOW,
    )
      .trimEnd()
      .split("\n")
      .slice(1)
      .map((line) => line.split(/\s+/)[3]);
    expect(states).toEqual(["idle", "working", "waiting*", "running*"]);
  });

  // Regression (CLI exploratory pass): `sh -c echo $FOO; ls` read as another command than the one run.
  it("shows each word of a command as a shell would take it back", () => {
    expect(shellWord("make")).toBe("make");
    expect(shellWord("--jobs=4")).toBe("--jobs=4");
    expect(shellWord("日本語")).toBe("日本語");
    expect(shellWord("echo $FOO; ls")).toBe("'echo $FOO; ls'");
    expect(shellWord("it's")).toBe("'it'\\''s'");
    expect(shellWord("")).toBe("''");
    expect(shellWord("~/x")).toBe("'~/x'");
    const table = formatSessionTable([session({ command: ["sh", "-c", "echo $FOO; ls *.ts", ""] })], NOW);
    expect(table.trimEnd().split("\n")[1]).toMatch(/ sh -c 'echo \$FOO; ls \*\.ts' ''$/);
  });

  // Regression (CLI exploratory pass): columns were padded by UTF-16 code units, so a name in
  // Japanese (two columns a character) or with a combining accent pushed the rest of its row out
  // of line, and a long command of emoji was cut in the middle of a character.
  it("aligns columns by the width text takes on screen: wide characters, combining marks, emoji", () => {
    const lines = formatSessionTable(
      [
        session({ name: "日本語", command: ["true"] }),
        session({ id: "BBBBBBBBBBBBBBBBBBBBBB", name: "e\u0301cole", command: ["true"] }),
        session({ id: "CCCCCCCCCCCCCCCCCCCCCC", name: "🚀go", command: ["true"] }),
        session({ id: "DDDDDDDDDDDDDDDDDDDDDD", name: "plain", command: ["echo", "🚀".repeat(40)] }),
      ],
      NOW,
    )
      .trimEnd()
      .split("\n");
    expect(lines).toEqual([
      "ID                      NAME    KIND      STATE   PID  EXIT  AGE  COMMAND",
      "AAAAAAAAAAAAAAAAAAAAAA  日本語  terminal  exited  42   0     5s   true",
      "BBBBBBBBBBBBBBBBBBBBBB  e\u0301cole   terminal  exited  42   0     5s   true",
      "CCCCCCCCCCCCCCCCCCCCCC  🚀go    terminal  exited  42   0     5s   true",
      // 60 columns at most: "echo " and 27 rockets (54 columns), then the ellipsis.
      `DDDDDDDDDDDDDDDDDDDDDD  plain   terminal  exited  42   0     5s   echo ${"🚀".repeat(27)}…`,
    ]);
  });

  it("shows no exit for a session that ended without a code, ? for a lost one", () => {
    const lines = formatSessionTable(
      [
        session({ kind: "agent", exitCode: null, command: null, agent: "echo", pid: null }),
        session({ id: "BBBBBBBBBBBBBBBBBBBBBB", state: "lost", exitCode: null }),
      ],
      NOW,
    ).split("\n");
    expect(lines[1]).toMatch(/^A+\s+-\s+agent\s+exited\s+-\s+-\s+5s\s+agent echo$/);
    expect(lines[2]).toMatch(/^B+\s+-\s+terminal\s+lost\s+42\s+\?\s+5s\s+true$/);
  });
});

describe("formatSessionLine", () => {
  // Regression (CLI audit): kill of an agent session printed "exited with code ?".
  it("says a session without an exit code or signal ended", () => {
    expect(formatSessionLine(session({ kind: "agent", exitCode: null }))).toBe("AAAAAAAAAAAAAAAAAAAAAA ended");
    expect(formatSessionLine(session({ exitCode: 3 }))).toBe("AAAAAAAAAAAAAAAAAAAAAA exited with code 3");
    expect(formatSessionLine(session({ exitCode: null, signal: "SIGTERM" }))).toBe(
      "AAAAAAAAAAAAAAAAAAAAAA was killed by SIGTERM",
    );
    expect(formatSessionLine(session({ state: "lost", exitCode: null }))).toBe("AAAAAAAAAAAAAAAAAAAAAA was lost");
  });
});
