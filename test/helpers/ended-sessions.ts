import { expect } from "vitest";
import { waitFor } from "./wait-for.js";
import type { api } from "./gateway.js";

type Http = ReturnType<typeof api>;

/** A pipe session running `sh -c script`, once it has ended. */
export async function endedPipe(http: Http, script: string, name?: string): Promise<string> {
  const created = await http.post("/v1/sessions", { command: ["sh", "-c", script], ...(name ? { name } : {}) });
  expect(created.status).toBe(201);
  const id = created.json.id as string;
  await waitFor(async () => (await http.get(`/v1/sessions/${id}`)).json.state === "exited", 10_000, `${id} to end`);
  return id;
}

/** The ids `GET /v1/sessions` lists. */
export async function listedIds(http: Http): Promise<string[]> {
  return ((await http.get("/v1/sessions")).json.sessions as Array<{ id: string }>).map((s) => s.id);
}
