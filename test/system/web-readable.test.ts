import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { webReadable } from "../../src/system/web-readable.js";

describe("webReadable", () => {
  it("delivers the bytes in order and ends with the Node stream", async () => {
    const source = new PassThrough();
    const reader = webReadable(source).getReader();
    source.write("ab");
    source.end("c");
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    expect(text).toBe("abc");
  });

  it("pauses the Node stream while nobody reads, and goes on when read", async () => {
    const source = new PassThrough({ highWaterMark: 4 });
    const reader = webReadable(source).getReader();
    for (let i = 0; i < 8; i++) source.write("12345678");
    await new Promise((r) => setImmediate(r));
    expect(source.isPaused()).toBe(true);
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).toBe("12345678");
    await reader.cancel();
  });

  // Regression: with Readable.toWeb, data the socket still emitted after a cancel (an agent
  // disposed while its output was held back) threw "Controller is already closed", uncaught.
  it("drops data the Node stream emits after the web stream was cancelled, without throwing", async () => {
    const source = new PassThrough();
    const web = webReadable(source);
    const reader = web.getReader();
    source.write("before");
    await reader.read();
    await reader.cancel("disposed");
    expect(() => source.emit("data", Buffer.from("after"))).not.toThrow();
    expect(source.destroyed).toBe(true);
  });
});
