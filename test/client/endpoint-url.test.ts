import { describe, expect, it } from "vitest";
import { endpointUrl } from "../../src/client/transport.js";

describe("the gateway URL", () => {
  it("keeps a path prefix and switches the scheme for each transport", () => {
    expect(endpointUrl("https://box.example/sb/", "/v1/sessions?state=running", "http")).toBe(
      "https://box.example/sb/v1/sessions?state=running",
    );
    expect(endpointUrl("http://127.0.0.1:7317", "/v1/ws", "ws")).toBe("ws://127.0.0.1:7317/v1/ws");
    expect(endpointUrl("wss://box.example", "/v1/ws", "http")).toBe("https://box.example/v1/ws");
  });

  it("refuses a user name or password in it without repeating them (exploratory test: a password echoed to an MCP client)", () => {
    for (const url of ["http://user:hunter2pass@127.0.0.1:7317", "ws://hunter2pass@127.0.0.1:7317"]) {
      let message = "";
      try {
        endpointUrl(url, "/v1/sessions", "http");
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/must not carry a user name or password/);
      expect(message).not.toContain("hunter2pass");
    }
    expect(() => endpointUrl("ftp://127.0.0.1", "/", "http")).toThrow(/http\(s\) or ws\(s\)/);
  });
});
