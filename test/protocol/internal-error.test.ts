import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as errors from "../../src/protocol/errors.js";
import { sendError } from "../../src/server/http/http.js";
import { cli } from "../cli/helpers.js";

// An unexpected failure must look to callers exactly as an unknown Error always did: the
// gateway's words stay in its log. `InternalError` is the class src throws for such failures.
const SECRET = "db handle /var/lib/secret-path is closed";
const makeInternal = (message: string): Error => {
  const Internal = (errors as Record<string, unknown>)["InternalError"] as
    (new (m: string, o?: ErrorOptions) => Error) | undefined;
  return Internal === undefined ? new Error(message) : new Internal(message, { cause: new Error("root") });
};

describe("an internal failure", () => {
  let url = "";
  let toThrow: () => Error = () => new Error(SECRET);
  const server = createServer((_req, res) => {
    try {
      throw toThrow();
    } catch (error) {
      sendError(res, error);
    }
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  for (const [name, make] of [
    ["a bare Error", (m: string) => new Error(m)],
    ["an InternalError", makeInternal],
  ] as const) {
    it(`answers HTTP 500 INTERNAL with the generic message for ${name}`, async () => {
      toThrow = () => make(SECRET);
      const res = await fetch(url);
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({
        error: { code: "INTERNAL", message: "internal error; the gateway log has details" },
      });
      expect(text).not.toContain("secret");
    });
  }

  it("keeps its message and cause for the log", () => {
    const error = makeInternal(SECRET);
    expect(error.message).toBe(SECRET);
    expect(error).toBeInstanceOf(Error);
  });
});

describe("the CLI on a converted failure", () => {
  it("prints `serve --node-id` mistakes without a code and exits 2", async () => {
    const run = await cli(["serve", "--port", "0", "--redis", "redis://127.0.0.1:1", "--node-id=bad/x"], {});
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(
      'switchboard: --node-id: a node id is 1 to 128 letters, digits and _ . : @ - (starting with a letter or digit), not "bad/x"',
    );
  });
});
