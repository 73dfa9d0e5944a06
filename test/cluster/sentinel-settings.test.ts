import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseRedisSeeds, parseSentinelUrl } from "../../src/cluster/cluster-settings.js";
import { parseConfig } from "../../src/server/config/config.js";
import { resolveClusterSettings } from "../../src/server/cluster/cluster-mode.js";

describe("Sentinel and waitReplicas settings", () => {
  it("reads a redis+sentinel:// URL back into the Sentinels, master name, database and credentials it names", () => {
    const host = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/), fc.ipV4());
    fc.assert(
      fc.property(
        fc.array(fc.record({ host, port: fc.integer({ min: 1, max: 65_535 }) }), { minLength: 1, maxLength: 5 }),
        fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
        fc.integer({ min: 0, max: 15 }),
        fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
        (sentinels, name, db, password) => {
          const auth = password === undefined ? "" : `:${encodeURIComponent(password)}@`;
          const text = `redis+sentinel://${auth}${sentinels.map((s) => `${s.host}:${s.port}`).join(",")}/${name}/${db}`;
          expect(parseSentinelUrl(text)).toEqual({
            sentinels,
            name,
            db,
            ...(password !== undefined ? { password } : {}),
            tls: false,
          });
          expect(parseRedisSeeds(text)).toEqual([text]);
        },
      ),
    );
    expect(parseSentinelUrl("rediss+sentinel://s1/m")).toEqual({
      sentinels: [{ host: "s1", port: 26379 }],
      name: "m",
      db: 0,
      tls: true,
    });
  });

  it("refuses a malformed Sentinel URL, naming its problem, on the command line and in the config", () => {
    expect(() => parseRedisSeeds("redis+sentinel://s1:26379")).toThrow(/a Sentinel URL looks like redis\+sentinel:/);
    expect(() => parseRedisSeeds("redis+sentinel://s1:26379/my master")).toThrow(/names the master as its path/);
    expect(() => parseRedisSeeds("redis+sentinel://s1:99999/m")).toThrow(/"s1:99999" is not a Sentinel's HOST:PORT/);
    expect(() => parseConfig({ cluster: { redis: "redis+sentinel://s1:26379,/" } })).toThrow(
      /cluster\.redis: a Sentinel URL names the master/,
    );
    expect(() => parseConfig({ cluster: { redis: ["redis+sentinel://s1/m", "redis://a:1"] } })).toThrow(
      /cluster\.redis: a redis\+sentinel:\/\/ URL names all its Sentinels itself/,
    );
  });

  it("takes waitReplicas with one server or Sentinels, and refuses it with a Redis Cluster or out of bounds", () => {
    const config = parseConfig({ cluster: { redis: "redis+sentinel://s1,s2/m", waitReplicas: 1, waitTimeoutMs: 500 } });
    expect(resolveClusterSettings(undefined, config.cluster, 7317)).toMatchObject({
      seeds: ["redis+sentinel://s1,s2/m"],
      waitReplicas: 1,
      waitTimeoutMs: 500,
    });
    expect(() => parseConfig({ cluster: { redis: ["redis://a:1", "redis://b:2"], waitReplicas: 1 } })).toThrow(
      /cluster\.redis: cluster\.waitReplicas needs one Redis server or a redis\+sentinel:\/\/ URL/,
    );
    expect(() => parseConfig({ cluster: { redis: "redis://a:1", waitReplicas: -1 } })).toThrow(/cluster\.waitReplicas/);
    expect(() => parseConfig({ cluster: { redis: "redis://a:1", waitTimeoutMs: 10_000 } })).toThrow(
      /cluster\.waitTimeoutMs/,
    );
    // --redis names a Redis Cluster while the config asks for replicas: refused at start.
    const waiting = parseConfig({ cluster: { redis: "redis://a:1", waitReplicas: 2 } }).cluster;
    expect(() => resolveClusterSettings({ redis: ["redis://a:1", "redis://b:2"] }, waiting, 0)).toThrow(
      /waitReplicas needs one Redis server/,
    );
  });
});
