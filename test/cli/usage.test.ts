import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../src/cli/commands.js";
import { CLI_TIMEOUT_MS, REPO, cli } from "./helpers.js";

/** The options in a usage line (`[--pty]`, `[-n]`, `[--read-only | --force]`), without the common --json. */
function optionsOf(line: string): string[] {
  return [...line.matchAll(/(?<=[[|]\s?)(--?[a-z][\w-]*)/g)].map((m) => m[1]!).filter((o) => o !== "--json");
}

describe("usage and docs", () => {
  // Regression (CLI audit): the top-level usage left out run --env, send -n and prompt -w.
  it(
    "the top-level usage and docs/cli.md list every option of every command's own usage",
    async () => {
      const names = ["serve", ...Object.keys(COMMANDS)];
      const [top, ...own] = await Promise.all([cli(["--help"], {}), ...names.map((n) => cli([n, "--help"], {}))]);
      const docs = readFileSync(join(REPO, "docs", "cli.md"), "utf8");
      const topLines = top.stdout.split("\n");
      const docRows = docs.split("\n").filter((l) => l.startsWith("| `switchboard "));
      names.forEach((name, i) => {
        const usage = own[i]!.stdout.split("\n")[0]!;
        expect(usage).toMatch(new RegExp(`^Usage: switchboard ${name}\\b`));
        const options = optionsOf(usage);
        const topLine = topLines.filter((l) => l.startsWith(`  switchboard ${name} `)).join(" ");
        const docRow = docRows.filter((l) => l.startsWith(`| \`switchboard ${name} `)).join(" ");
        expect({ name, missing: options.filter((o) => !optionsOf(topLine).includes(o)) }).toEqual({
          name,
          missing: [],
        });
        expect({ name, missing: options.filter((o) => !optionsOf(docRow).includes(o)) }).toEqual({ name, missing: [] });
      });
    },
    CLI_TIMEOUT_MS,
  );

  // Regression (exploratory testing): `switchboard help run` printed the top-level usage.
  it(
    "help COMMAND prints that command's usage, as COMMAND --help does",
    async () => {
      const [run, serve, bogus] = await Promise.all([
        cli(["help", "run"], {}),
        cli(["help", "serve"], {}),
        cli(["help", "bogus"], {}),
      ]);
      expect(run).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: switchboard run /) });
      expect(serve).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: switchboard serve /) });
      expect(bogus).toMatchObject({ code: 2, stderr: expect.stringMatching(/^switchboard: unknown command bogus\n/) });
    },
    CLI_TIMEOUT_MS,
  );

  // Exploratory test (operator): `switchboard -v` said "missing the command (before -v)", and so
  // did `switchboard --url` with no value.
  it(
    "says which option it does not know, and which global option lacks its value",
    async () => {
      const [v, url, urlWithValue] = await Promise.all([
        cli(["-v"], {}),
        cli(["--url"], {}),
        cli(["--url", "http://127.0.0.1:9"], {}),
      ]);
      const first = (r: { stderr: string }) => r.stderr.split("\n")[0];
      expect([v.code, url.code, urlWithValue.code]).toEqual([2, 2, 2]);
      expect(first(v)).toBe(
        "switchboard: unknown option -v (switchboard --help lists the commands, --version prints the version)",
      );
      expect(first(url)).toBe("switchboard: --url needs a value");
      expect(first(urlWithValue)).toBe("switchboard: missing the command (before --url)");
    },
    CLI_TIMEOUT_MS,
  );

  // Review of 3ea2cc9: the topic was the first word not starting with "-", so a global option's
  // value before it was taken for the command — and `--token T help run` printed the token.
  it(
    "help COMMAND after global options asks about COMMAND, not about an option's value (the token is not echoed)",
    async () => {
      const [token, url] = await Promise.all([
        cli(["--token", "s3cr3t-token", "help", "run"], {}),
        cli(["help", "--url", "http://127.0.0.1:1", "ls"], {}),
      ]);
      expect(token).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: switchboard run /) });
      expect(token.stdout + token.stderr).not.toContain("s3cr3t-token");
      expect(url).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: switchboard ls /) });
    },
    CLI_TIMEOUT_MS,
  );

  it("without a command prints the usage on stderr, as a usage error (exit 2)", async () => {
    const none = await cli([], {});
    expect(none).toMatchObject({ code: 2, stdout: "" });
    expect(none.stderr).toMatch(/^switchboard — a gateway/);
  });

  it("--version prints the package's version", async () => {
    const { version } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    expect(await cli(["--version"], {})).toMatchObject({ code: 0, stdout: `switchboard ${version}\n` });
  });

  it("docs/cli.md says that send needs -- before text starting with a dash, and how serve ends sessions", () => {
    const docs = readFileSync(join(REPO, "docs", "cli.md"), "utf8");
    expect(docs).toContain("`switchboard send ID -- ls -la`");
    expect(docs).toMatch(
      /a\s+stop \(SIGTERM, Ctrl-C\) or a crash leaves them running, and the next `serve` on the same data\s+directory adopts them/,
    );
  });
});
