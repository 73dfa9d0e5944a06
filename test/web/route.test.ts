import { describe, expect, it } from "vitest";
import { parseRoute } from "../../web/src/route.js";

describe("the address", () => {
  it("names the session list or a session's page, also with a malformed escape (exploratory test: it threw and left the previous page up)", () => {
    expect(parseRoute("")).toEqual({ name: "home" });
    expect(parseRoute("#/")).toEqual({ name: "home" });
    expect(parseRoute("#/s/kbDYb3YEOIRcC13f1i4fFA")).toEqual({ name: "session", id: "kbDYb3YEOIRcC13f1i4fFA" });
    expect(parseRoute("#/s/a%20b")).toEqual({ name: "session", id: "a b" });
    expect(parseRoute("#/s/%E0")).toEqual({ name: "session", id: "%E0" });
  });
});
