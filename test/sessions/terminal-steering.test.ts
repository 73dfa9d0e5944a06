import { describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

describe("input to a pipe session whose process closed its stdin", () => {
  it("is refused with INPUT_CLOSED, not SESSION_NOT_RUNNING: the session still runs and takes signals", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const created = await http.post("/v1/sessions", {
      command: ["sh", "-c", "exec 0<&-; echo closed; while :; do sleep 0.05; done"],
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    await waitFor(async () => (await http.get(`/v1/sessions/${id}/output`)).text.includes("closed"), 10_000, "closed");
    // Its first write is refused already: the pipe's broken end shows when written to, and the
    // gateway looks before answering (it used to answer ok for bytes that went nowhere).
    const refused = await http.post(`/v1/sessions/${id}/input`, { data: "hello\n" });
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe("INPUT_CLOSED");
    expect(refused.json.error.message).toMatch(/closed its input/);
    expect((await http.get(`/v1/sessions/${id}`)).json.state).toBe("running");
    expect((await http.post(`/v1/sessions/${id}/signal`, { signal: "TERM" })).status).toBe(200);
  });
});
