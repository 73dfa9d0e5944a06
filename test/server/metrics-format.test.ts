import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PluginMetrics } from "../../src/plugins/metrics.js";
import { GatewayMetrics } from "../../src/server/ops/metrics.js";
import { startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";

const DASHBOARD = join(import.meta.dirname, "..", "..", "examples", "grafana", "switchboard-dashboard.json");
/** Prometheus's own linter, where it is installed (`apt-get install prometheus`); the parser below always runs. */
const PROMTOOL = "/usr/bin/promtool";

type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** A float as Prometheus reads it (Go's ParseFloat: `NaN` in any case; prom-client writes `Nan`). */
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]?Inf|[nN][aA][nN])$/;

/**
 * A strict reader of the Prometheus text format (0.0.4): empty lines aside, every family has one HELP and one TYPE
 * before its samples, its samples are together, names and labels are well formed, label values
 * escape only `\\`, `"` and `\n`, no series repeats, and a histogram's buckets grow up to a `+Inf`
 * bucket equal to its `_count`. Throws, naming the line, on anything else.
 */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | undefined;
  const fail = (n: number, line: string, why: string): never => {
    throw new Error(`line ${n + 1}: ${why}: ${line}`);
  };
  expect(text.endsWith("\n")).toBe(true);
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, n) => {
    // The format ignores empty lines (prom-client writes one between families).
    if (line === "") return;
    if (line.startsWith("#")) {
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!meta) return fail(n, line, "a comment that is neither HELP nor TYPE");
      const [, kind, name, rest] = meta as unknown as [string, "HELP" | "TYPE", string, string];
      if (!METRIC_NAME.test(name)) fail(n, line, "bad metric name");
      let family = families.get(name);
      if (family === undefined) {
        family = { name, type: "untyped", help: "", samples: [] };
        families.set(name, family);
      } else if (family !== current || family.samples.length > 0) fail(n, line, "HELP or TYPE after its samples");
      current = family;
      if (kind === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) fail(n, line, "unknown type");
        family.type = rest as MetricType;
      } else {
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) fail(n, line, "bad escape in HELP");
        family.help = rest;
      }
      return;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!sample) return fail(n, line, "not a sample");
    const [, name, labelText = "", value] = sample as unknown as [string, string, string | undefined, string];
    if (current === undefined) return fail(n, line, "a sample before any TYPE");
    const suffixes = current.type === "histogram" ? ["_bucket", "_sum", "_count"] : [""];
    if (!suffixes.some((suffix) => name === current!.name + suffix)) fail(n, line, `not of family ${current.name}`);
    const labels: Record<string, string> = {};
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(,|$)/y;
    for (let at = 0; at < labelText.length;) {
      labelRe.lastIndex = at;
      const label = labelRe.exec(labelText);
      if (!label || !LABEL_NAME.test(label[1]!)) return fail(n, line, "bad label");
      if (label[1]! in labels) fail(n, line, "repeated label");
      labels[label[1]!] = label[2]!;
      at = labelRe.lastIndex;
    }
    if (!VALUE.test(value)) fail(n, line, "bad value");
    const series = `${name}{${Object.entries(labels)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(",")}}`;
    if (seen.has(series)) fail(n, line, "repeated series");
    seen.add(series);
    current.samples.push({ name, labels, value: Number(value.replace(/^\+?Inf$/, "Infinity")) });
  });
  for (const family of families.values()) {
    expect(family.help, `${family.name} has a HELP`).not.toBe("");
    if (family.type === "histogram") checkHistogram(family);
  }
  return families;
}

/** Each labelled series of a histogram: buckets that do not shrink, ending at `+Inf` = `_count`. */
function checkHistogram(family: Family): void {
  const key = (labels: Record<string, string>) =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([k]) => k !== "le")
        .sort(),
    );
  const groups = new Map<string, Family["samples"]>();
  for (const s of family.samples) groups.set(key(s.labels), [...(groups.get(key(s.labels)) ?? []), s]);
  for (const samples of groups.values()) {
    const buckets = samples.filter((s) => s.name.endsWith("_bucket"));
    const count = samples.find((s) => s.name.endsWith("_count"))!;
    expect(buckets.length, family.name).toBeGreaterThan(0);
    expect(buckets[buckets.length - 1]!.labels.le, family.name).toBe("+Inf");
    for (let i = 1; i < buckets.length; i++) {
      expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
      expect(Number(buckets[i]!.labels.le!.replace("+Inf", "Infinity"))).toBeGreaterThan(
        Number(buckets[i - 1]!.labels.le),
      );
    }
    expect(buckets[buckets.length - 1]!.value).toBe(count.value);
    expect(
      samples.some((s) => s.name.endsWith("_sum")),
      family.name,
    ).toBe(true);
  }
}

/**
 * Prometheus's naming rules (prometheus.io "Metric and label naming"; what promtool's linter
 * checks): counters end in `_total` and nothing else does, units are base units (seconds,
 * bytes) written out as the last word before `_total`.
 */
function namingMistakes(families: Map<string, Family>): string[] {
  const mistakes: string[] = [];
  for (const { name, type } of families.values()) {
    if (type === "counter" && !name.endsWith("_total")) mistakes.push(`${name}: a counter must end in _total`);
    if (type !== "counter" && name.endsWith("_total")) mistakes.push(`${name}: a ${type} must not end in _total`);
    if (/_(ms|msec|millis|milliseconds|us|usec|microseconds|ns|nanoseconds|minutes|hours|days)(_|$)/.test(name))
      mistakes.push(`${name}: time is counted in _seconds`);
    if (/_(kb|kib|mb|mib|gb|gib|kilobytes|megabytes|bits)(_|$)/.test(name))
      mistakes.push(`${name}: sizes are counted in _bytes`);
    if (/[A-Z]/.test(name) || /__/.test(name)) mistakes.push(`${name}: snake_case`);
  }
  return mistakes;
}

/** promtool's verdict on an exposition: undefined where promtool is not installed. */
function promtool(text: string): { status: number | null; output: string } | undefined {
  if (!existsSync(PROMTOOL)) return undefined;
  const run = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8", timeout: 30_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe("/metrics follows Prometheus's conventions", () => {
  let gw: TestGateway;
  let text: string;
  let families: Map<string, Family>;

  beforeAll(async () => {
    gw = await startTestGateway();
    // A session and an HTTP request, so that labelled series have samples.
    const auth = { authorization: `Bearer ${gw.token}`, "content-type": "application/json" };
    const created = await fetch(`${gw.url}/v1/sessions`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ command: ["true"] }),
    });
    expect(created.status).toBe(201);
    const answer = await fetch(`${gw.url}/metrics`, { headers: auth });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    text = await answer.text();
    families = parseExposition(text);
  });
  afterAll(() => gw?.close());

  it("parses strictly, with the standard process and Node.js metrics unprefixed", () => {
    expect(families.size).toBeGreaterThan(40);
    for (const name of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "process_open_fds",
      "process_max_fds",
      "nodejs_heap_size_used_bytes",
      "nodejs_eventloop_lag_p99_seconds",
      "nodejs_active_handles",
      "nodejs_gc_duration_seconds",
    ]) {
      expect(families.has(name), name).toBe(true);
    }
    expect([...families.keys()].filter((name) => /^switchboard_(process|nodejs)_/.test(name))).toEqual([]);
    expect(families.get("switchboard_sessions")!.samples).toContainEqual({
      name: "switchboard_sessions",
      labels: { kind: "terminal", state: expect.any(String) },
      value: 1,
    });
  });

  // Regression: promtool check metrics failed on switchboard_nodejs_active_handles_total (a gauge).
  it("names every metric by the rules: no gauge ends in _total, counters do, base units", () => {
    expect(namingMistakes(families)).toEqual([]);
    // The plugin system's metrics too (registered only when plugins are configured).
    const metrics = new GatewayMetrics();
    const plugins = new PluginMetrics(metrics.registry);
    plugins.setState("p", "running");
    plugins.call("p", "sessions.list", "ok");
    plugins.hookRequest("p", "public", 204);
    return metrics.registry.metrics().then((own) => {
      const all = parseExposition(own);
      expect(all.has("switchboard_plugin_calls_total")).toBe(true);
      expect(namingMistakes(all)).toEqual([]);
      plugins.dispose();
    });
  });

  it("passes promtool check metrics where promtool is installed", () => {
    const verdict = promtool(text);
    if (verdict === undefined) return;
    expect(verdict).toEqual({ status: 0, output: "" });
  });

  it("the Grafana dashboard in examples/ is a dashboard model that queries only metrics /metrics has", () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8"));
    expect(dashboard).toMatchObject({ title: expect.any(String), uid: expect.any(String) });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.__inputs).toContainEqual(
      expect.objectContaining({ name: "DS_PROMETHEUS", pluginId: "prometheus" }),
    );
    const series = new Set<string>();
    for (const family of families.values()) {
      series.add(family.name);
      if (family.type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) series.add(family.name + s);
    }
    const ids = new Set<number>();
    const queried: string[] = [];
    for (const panel of dashboard.panels) {
      expect(panel).toMatchObject({ type: expect.any(String), title: expect.any(String) });
      expect(Object.keys(panel.gridPos).sort()).toEqual(["h", "w", "x", "y"]);
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
      expect(ids.has(panel.id)).toBe(false);
      ids.add(panel.id);
      if (panel.type === "row") continue;
      expect(panel.datasource).toEqual({ type: "prometheus", uid: "${DS_PROMETHEUS}" });
      expect(panel.targets.length).toBeGreaterThan(0);
      for (const target of panel.targets) queried.push(...(target.expr as string).match(/[a-zA-Z_:][\w:]*/g)!);
    }
    for (const variable of dashboard.templating.list) queried.push(...(variable.definition as string).match(/\w+/g)!);
    const metrics = [...new Set(queried.filter((word) => /^(switchboard|process|nodejs)_/.test(word)))];
    expect(metrics.length).toBeGreaterThan(20);
    expect(metrics.filter((name) => !series.has(name))).toEqual([]);
  });
});
