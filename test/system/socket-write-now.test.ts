import { Socket as NetSocket, createServer } from "node:net";
import type { Socket } from "node:net";
import { connect as tlsConnect, createServer as createTlsServer } from "node:tls";
import { describe, expect, it, onTestFinished } from "vitest";
import { writeNow } from "../../src/system/socket-write-now.js";
import { selfSigned } from "../helpers/self-signed.js";
import { waitFor } from "../helpers/wait-for.js";

/** A loopback connection: the client's socket and what its peer received. */
async function pair(): Promise<{ socket: Socket; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  const server = createServer((peer) => peer.on("data", (d: Buffer) => chunks.push(d)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const socket = await new Promise<Socket>((resolve) => {
    const s = new NetSocket();
    s.connect(port, "127.0.0.1", () => resolve(s));
  });
  onTestFinished(() => {
    socket.destroy();
    server.close();
  });
  return { socket, received: () => Buffer.concat(chunks) };
}

describe("writeNow", () => {
  it("writes a plain socket's bytes into the kernel at once, and only when nothing waits in its stream", async () => {
    const { socket, received } = await pair();
    expect(writeNow(socket, Buffer.from("one "))).toBe(4);
    // Something queued in the stream goes first: writeNow leaves the bytes to the stream.
    socket.cork();
    socket.write("two ");
    expect(socket.writableLength).toBe(4);
    expect(writeNow(socket, Buffer.from("three"))).toBe(0);
    socket.write("three");
    socket.uncork();
    await waitFor(() => received().toString() === "one two three", 5_000, "the bytes in order");
    socket.destroy();
    expect(writeNow(socket, Buffer.from("x"))).toBe(0);
  });

  it("never writes past TLS: an encrypted socket's bytes go through the stream", async () => {
    const { cert, key } = selfSigned();
    const got: Buffer[] = [];
    const server = createTlsServer({ cert, key }, (peer) => peer.on("data", (d: Buffer) => got.push(d)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    const socket = tlsConnect({ port, host: "127.0.0.1", rejectUnauthorized: false });
    await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()));
    onTestFinished(() => {
      socket.destroy();
      server.close();
    });
    expect(writeNow(socket, Buffer.from("plain"))).toBe(0);
    socket.write("sealed");
    await waitFor(() => Buffer.concat(got).toString() === "sealed", 5_000, "the TLS peer's bytes");
  });
});
