import type { Readable } from "node:stream";

/**
 * A Node readable (a child's stdout) as a web ReadableStream, with back-pressure (pauses the
 * Node stream while the web queue is full). Unlike `Readable.toWeb` in Node 20, data the Node
 * stream still emits after the web stream was cancelled or closed is dropped: there, `enqueue`
 * on the closed controller threw from a socket's `data` event and ended the gateway
 * (test/system/web-readable.test.ts).
 */
export function webReadable(stream: Readable): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        stream.on("data", (chunk: Buffer | string) => {
          if (done) return;
          const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
          controller.enqueue(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) stream.pause();
        });
        const finish = (error?: Error) => {
          if (done) return;
          done = true;
          if (error) controller.error(error);
          else controller.close();
        };
        stream.once("end", () => finish());
        stream.once("error", (error: Error) => finish(error));
        // Destroyed without an end (the child was killed): what was read is all there is.
        stream.once("close", () => finish());
      },
      pull() {
        if (!done) stream.resume();
      },
      cancel() {
        done = true;
        stream.destroy();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: stream.readableHighWaterMark }),
  );
}
