import { describe, expect, it } from "vitest";
import { hoistGlobalOptions } from "../../src/cli/global-options.js";

describe("options before the command", () => {
  it("moves --url, --token, --data-dir (both forms) and --json to just after the command", () => {
    expect(hoistGlobalOptions(["--url", "http://box:7317", "--json", "ls", "--state", "running"])).toEqual([
      "ls",
      "--url",
      "http://box:7317",
      "--json",
      "--state",
      "running",
    ]);
    expect(hoistGlobalOptions(["--data-dir=/tmp/x", "--token", "t", "run", "--pty", "--", "sh", "--json"])).toEqual([
      "run",
      "--data-dir=/tmp/x",
      "--token",
      "t",
      "--pty",
      "--",
      "sh",
      "--json",
    ]);
  });

  it("leaves everything else as it was, for the command line to be refused", () => {
    expect(hoistGlobalOptions(["ls", "--json"])).toEqual(["ls", "--json"]);
    expect(hoistGlobalOptions(["--json"])).toEqual(["--json"]);
    expect(hoistGlobalOptions(["--url"])).toEqual(["--url"]);
    expect(hoistGlobalOptions(["--pty", "run"])).toEqual(["--pty", "run"]);
    // Stops at the first argument that is not one of them: the rest is not searched.
    expect(hoistGlobalOptions(["--json", "--pty", "run"])).toEqual(["--pty", "--json", "run"]);
  });
});
