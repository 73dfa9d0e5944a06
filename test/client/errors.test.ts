import { describe, expect, it } from "vitest";
import { ConnectionError, SwitchboardError, isSwitchboardError } from "../../src/client/index.js";

describe("isSwitchboardError", () => {
  it("matches a gateway error by the codes named, and a misspelt code does not compile", () => {
    const notFound = new SwitchboardError("SESSION_NOT_FOUND", "no session s1");
    expect(isSwitchboardError(notFound)).toBe(true);
    expect(isSwitchboardError(notFound, "CONTROL_HELD", "SESSION_NOT_FOUND")).toBe(true);
    expect(isSwitchboardError(notFound, "CONTROL_HELD")).toBe(false);
    expect(isSwitchboardError(new ConnectionError("CLOSED", "closed"))).toBe(false);
    expect(isSwitchboardError({ code: "SESSION_NOT_FOUND", message: "a plain object" }, "SESSION_NOT_FOUND")).toBe(
      false,
    );
    // @ts-expect-error a code the protocol does not have (tsc checks this line)
    expect(isSwitchboardError(notFound, "SESSION_NOT_FOUNDD")).toBe(false);
  });
});
