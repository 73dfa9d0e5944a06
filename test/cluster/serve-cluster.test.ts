import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { defaultNodeId, parseRedisSeeds } from "../../src/cluster/cluster-settings.js";
import { parseConfig } from "../../src/server/config/config.js";
import { resolveClusterSettings } from "../../src/server/cluster/cluster-mode.js";
import { cli } from "../cli/helpers.js";
import { serveInChild } from "../helpers/serve-child.js";
import { startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";

const SERVE_TEST_MS = 60_000;

describe("cluster mode settings", () => {
  it("takes one Redis URL or several seeds, and names what is wrong with one", () => {
    expect(parseRedisSeeds("redis://a:7000, redis://b:7001,")).toEqual(["redis://a:7000", "redis://b:7001"]);
    expect(() => parseRedisSeeds("http://a:7000")).toThrow(/^http:\/\/ is not a Redis URL/);
    expect(() => parseRedisSeeds("redis://a:7000/x")).toThrow(/path is a database number/);
    expect(() => parseRedisSeeds(" , ")).toThrow(/no Redis URL given/);
    expect(defaultNodeId(7317, "build 7")).toBe("build-7:7317");
    expect(defaultNodeId(0, "build7", 42)).toBe("build7:pid42");
  });

  it("reads the config's cluster section and refuses a malformed one with its path", () => {
    expect(parseConfig({ cluster: { redis: ["redis://a:1", "redis://b:2"], nodeId: "gw-a" } }).cluster).toEqual({
      redis: ["redis://a:1", "redis://b:2"],
      nodeId: "gw-a",
    });
    expect(() => parseConfig({ cluster: { redis: "redis://a:1", nodeId: "two words" } })).toThrow(
      /cluster\.nodeId: a node id is 1 to 128 letters/,
    );
    expect(() => parseConfig({ cluster: { redis: "tcp://a:1" } })).toThrow(
      /cluster\.redis: tcp:\/\/ is not a Redis URL/,
    );
  });

  it("takes the forward timeout from cluster.requestTimeoutMs, 500 ms to 60 s, and the default when unset", () => {
    const config = parseConfig({ cluster: { redis: "redis://a:1", requestTimeoutMs: 1_500 } });
    expect(resolveClusterSettings(undefined, config.cluster, 7317)).toMatchObject({ requestTimeoutMs: 1_500 });
    const unset = resolveClusterSettings(undefined, parseConfig({ cluster: { redis: "redis://a:1" } }).cluster, 7317);
    expect(unset).not.toHaveProperty("requestTimeoutMs");
    for (const requestTimeoutMs of [499, 60_001, 1.5])
      expect(() => parseConfig({ cluster: { redis: "redis://a:1", requestTimeoutMs } })).toThrow(
        /cluster\.requestTimeoutMs/,
      );
  });
});

describe("switchboard serve --redis", () => {
  it(
    "refuses a malformed --redis or --node-id as a command-line mistake (exit 2)",
    async () => {
      const dataDir = tempDir();
      const [badUrl, badId] = await Promise.all([
        cli(["serve", "--port", "0", "--data-dir", dataDir, "--redis", "localhost:6379"], {}),
        cli(["serve", "--port", "0", "--data-dir", dataDir, "--redis", "redis://127.0.0.1:1", "--node-id", "a b"], {}),
      ]);
      expect(badUrl).toMatchObject({ code: EXIT.USAGE, stdout: "" });
      expect(badUrl.stderr).toMatch(/^switchboard: --redis: localhost:\/\/ is not a Redis URL/);
      expect(badId).toMatchObject({ code: EXIT.USAGE, stdout: "" });
      expect(badId.stderr).toMatch(/^switchboard: --node-id: a node id is 1 to 128 letters/);
    },
    SERVE_TEST_MS,
  );

  it(
    "refuses a second live node with the same id at start, naming it, and an unreachable Redis",
    async () => {
      const redis = await startRedis();
      const first = await serveInChild({ dataDir: tempDir(), args: ["--redis", redis.url, "--node-id", "gw-a"] });
      expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const [second, unreachable] = await Promise.all([
        cli(["serve", "--port", "0", "--data-dir", tempDir(), "--redis", redis.url, "--node-id", "gw-a"], {}),
        cli(["serve", "--port", "0", "--data-dir", tempDir(), "--redis", "redis://127.0.0.1:1"], {}),
      ]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(
        /another node is live with the id gw-a \(its lease sb:node:gw-a in Redis expires in \d+ ms unless renewed\): stop it, or give this one another --node-id/,
      );
      expect(unreachable.code).toBe(1);
      expect(unreachable.stderr).toMatch(/cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/);
    },
    SERVE_TEST_MS,
  );
});
