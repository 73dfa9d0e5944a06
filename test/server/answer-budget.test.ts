/**
 * Big answers (pages of output, events, sessions) are held in the gateway's memory until their
 * clients read them: per identity, no more than ANSWER_BYTES_PER_IDENTITY may be on their way.
 * Found by the security audit: 150 connections of one viewer token asking for 8 MiB output pages
 * and reading nothing took the gateway from 114 MB to 1.3 GB.
 */
import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ANSWER_COUNTED_BYTES, AnswerBudget } from "../../src/server/http/answer-budget.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const MiB = 1024 * 1024;

/** A response as the budget sees it: events, and a socket it may destroy. */
function fakeResponse() {
  const res = new EventEmitter() as EventEmitter & { socket: { destroy: () => void } };
  res.socket = { destroy: vi.fn() };
  return res;
}
const asResponse = (res: ReturnType<typeof fakeResponse>) => res as unknown as ServerResponse;

afterEach(() => {
  vi.useRealTimers();
});

describe("answer budget", () => {
  it("admits big answers up to the budget per identity, then refuses with RATE_LIMITED until one is taken", () => {
    const budget = new AnswerBudget(10 * MiB, 60_000);
    const a = fakeResponse();
    const b = fakeResponse();
    budget.admit("vera", asResponse(a), 6 * MiB);
    budget.admit("vera", asResponse(b), 4 * MiB);
    expect(budget.held("vera")).toBe(10 * MiB);
    // Another identity has its own budget; small answers are not counted.
    budget.admit("ops", asResponse(fakeResponse()), 8 * MiB);
    budget.admit("vera", asResponse(fakeResponse()), ANSWER_COUNTED_BYTES - 1);
    expect(() => budget.check("vera")).toThrow(expect.objectContaining({ code: "RATE_LIMITED" }));
    let refusal: unknown;
    try {
      budget.admit("vera", asResponse(fakeResponse()), MiB);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toMatchObject({
      code: "RATE_LIMITED",
      message:
        '10.0 MiB of answers to "vera" are still on their way (its clients have not read them); read those before asking for more',
      details: { retryAfterSeconds: 1 },
    });
    // Taken by the kernel (finish), or its connection gone (close): counted once either way.
    a.emit("finish");
    a.emit("close");
    expect(budget.held("vera")).toBe(4 * MiB);
    budget.check("vera");
    b.emit("close");
    expect(budget.held("vera")).toBe(0);
    // With nothing on its way, one answer is admitted whatever its size.
    budget.admit("vera", asResponse(fakeResponse()), 20 * MiB);
  });

  it("ends the connection of an answer its client has not taken within the stall time, which frees it", () => {
    vi.useFakeTimers();
    const budget = new AnswerBudget(10 * MiB, 60_000);
    const stuck = fakeResponse();
    const read = fakeResponse();
    budget.admit("vera", asResponse(stuck), MiB);
    budget.admit("vera", asResponse(read), MiB);
    read.emit("finish");
    vi.advanceTimersByTime(60_000);
    expect(stuck.socket.destroy).toHaveBeenCalledTimes(1);
    expect(read.socket.destroy).not.toHaveBeenCalled();
  });

  it("a gateway refuses more pages to a token whose clients read none of theirs, and serves it again once they are gone", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const created = await http.post("/v1/sessions", { kind: "stream", name: "big" });
    const id = created.json.id as string;
    const piece = { type: "output", data: { data: "x".repeat(250_000) } };
    for (let i = 0; i < 12; i++) {
      const r = await http.post(`/v1/sessions/${id}/events`, [piece, piece, piece]);
      expect(r.status, r.text).toBe(200);
    }
    const sockets: Socket[] = [];
    try {
      let refused: Response | undefined;
      // Each asks for an 8 MiB page and reads none of it; the kernel takes a few MiB of each.
      for (let i = 0; i < 40 && refused === undefined; i++) {
        const socket = connect(Number(new URL(gw.url).port), "127.0.0.1");
        socket.pause();
        sockets.push(socket);
        socket.write(
          `GET /v1/sessions/${id}/output HTTP/1.1\r\nHost: ${new URL(gw.url).host}\r\nAuthorization: Bearer ${TEST_TOKEN}\r\n\r\n`,
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        const probe = await fetch(`${gw.url}/v1/sessions/${id}/output`, {
          headers: { authorization: `Bearer ${TEST_TOKEN}` },
        });
        if (probe.status === 429) refused = probe;
        else await probe.arrayBuffer();
      }
      expect(refused?.status).toBe(429);
      expect(refused!.headers.get("retry-after")).toBe("1");
      expect(await refused!.json()).toMatchObject({ error: { code: "RATE_LIMITED" } });
      // Small answers still work meanwhile.
      expect((await http.get(`/v1/sessions/${id}`)).status).toBe(200);

      for (const socket of sockets) socket.destroy();
      await waitFor(
        async () =>
          (
            await fetch(`${gw.url}/v1/sessions/${id}/output?max=100000`, {
              headers: { authorization: `Bearer ${TEST_TOKEN}` },
            })
          ).status === 200,
        10_000,
      );
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});
