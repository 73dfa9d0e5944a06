import { describe, expect, it } from "vitest";
import { withoutTokens } from "../../src/cli/hide-token.js";

describe("withoutTokens", () => {
  it("hides the value of --token in both forms and leaves everything else", () => {
    expect(withoutTokens(["serve", "--port", "0", "--token", "s3cret-value-0123456789"])).toEqual([
      "serve",
      "--port",
      "0",
      "--token",
      "***",
    ]);
    expect(withoutTokens(["ls", "--token=s3cret-value-0123456789", "--json"])).toEqual(["ls", "--token=***", "--json"]);
    expect(withoutTokens(["ls", "--json"])).toBeUndefined();
    // A trailing --token has no value to hide.
    expect(withoutTokens(["ls", "--token"])).toBeUndefined();
  });
});
