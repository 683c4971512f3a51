import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Registry } from "prom-client";
import { parse as parseYaml } from "yaml";

/**
 * The alert rules and the dashboard name only metrics (and labels) that peerpods really exports,
 * and the rules file has the shape Prometheus loads (`promtool check rules` checks the same shape;
 * it is not installed here, and it cannot know which metrics exist).
 */
const MONITORING = new URL("../../manifests/monitoring/", import.meta.url);
const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"];
const RULE_KEYS = new Set(["alert", "expr", "for", "keep_firing_for", "labels", "annotations"]);
const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;
const SEVERITIES = new Set(["critical", "warning", "info"]);

interface Rule {
  alert?: unknown;
  expr?: unknown;
  for?: unknown;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

let registry: Registry;

/**
 * Every metric module registers itself with the shared registry on import. The registry is imported
 * the same (dynamic) way as the modules: tsx gives dynamically imported modules their own instances.
 */
async function registerAllMetrics(): Promise<void> {
  const modules = readdirSync(fileURLToPath(new URL(".", import.meta.url))).filter((file) => file.endsWith(".ts") && !file.endsWith(".test.ts") && file !== "registry.ts");
  await Promise.all(modules.map((file) => import(`./${file.replace(/\.ts$/, ".js")}`)));
  ({ registry } = await import("./registry.js"));
}

/** The metric a PromQL series name refers to, and its label names; undefined when peerpods exports no such metric. */
function exported(series: string): { name: string; labels: string[] } | undefined {
  const candidates = [series, ...HISTOGRAM_SUFFIXES.filter((suffix) => series.endsWith(suffix)).map((suffix) => series.slice(0, -suffix.length))];
  for (const name of candidates) {
    const metric = registry.getSingleMetric(name) as { labelNames?: string[] } | undefined;
    if (metric) return { name, labels: [...(metric.labelNames ?? []), ...(name === series ? [] : ["le"])] };
  }
  return undefined;
}

/** Problems with the peerpods metrics an expression names: unknown metrics, label matchers on labels they lack. */
function metricProblems(expr: string): string[] {
  const problems: string[] = [];
  for (const match of expr.matchAll(/\b(peerpods_[a-z0-9_]+)\b(\{([^}]*)\})?/g)) {
    const metric = exported(match[1]!);
    if (!metric) {
      problems.push(`${match[1]} is not exported`);
      continue;
    }
    for (const [, label] of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) {
      if (!metric.labels.includes(label!)) problems.push(`${metric.name} has no label ${label}`);
    }
  }
  return problems;
}

const balanced = (expr: string): boolean =>
  [..."({["].every((open, i) => [...expr].filter((c) => c === open).length === [...expr].filter((c) => c === ")}]"[i]).length);

describe("monitoring assets", () => {
  before(registerAllMetrics);

  const rulesFile = parseYaml(readFileSync(new URL("prometheus-rules.yaml", MONITORING), "utf8")) as { groups?: { name?: unknown; rules?: Rule[] }[] };
  const rules = (rulesFile.groups ?? []).flatMap((group) => group.rules ?? []);

  it("prometheus-rules.yaml has the shape Prometheus loads: named groups of alerts with expr, for, severity and annotations", () => {
    assert.ok(rulesFile.groups?.length, "no groups");
    const groupNames = rulesFile.groups.map((group) => group.name);
    assert.equal(new Set(groupNames).size, groupNames.length, "group names must be unique");
    for (const group of rulesFile.groups) {
      assert.equal(typeof group.name, "string");
      assert.ok(group.rules?.length, `group ${String(group.name)} has no rules`);
    }
    const alerts = rules.map((rule) => rule.alert);
    assert.equal(new Set(alerts).size, alerts.length, "alert names must be unique");
    for (const rule of rules) {
      const name = String(rule.alert);
      assert.match(name, /^[A-Z][A-Za-z0-9]+$/, `alert name ${name}`);
      assert.deepEqual(Object.keys(rule).filter((key) => !RULE_KEYS.has(key)), [], `${name}: unknown keys`);
      assert.ok(typeof rule.expr === "string" && rule.expr.trim(), `${name}: expr`);
      assert.ok(balanced(rule.expr), `${name}: unbalanced brackets in ${rule.expr}`);
      if (rule.for !== undefined) assert.match(String(rule.for), DURATION, `${name}: for`);
      assert.ok(SEVERITIES.has(String(rule.labels?.severity)), `${name}: severity ${String(rule.labels?.severity)}`);
      assert.ok(typeof rule.annotations?.summary === "string" && typeof rule.annotations.description === "string", `${name}: summary and description`);
    }
  });

  it("every alert names only metrics and labels peerpods exports", () => {
    const problems = rules.flatMap((rule) => metricProblems(String(rule.expr)).map((problem) => `${String(rule.alert)}: ${problem}`));
    assert.deepEqual(problems, []);
  });

  it("alerts on leaked VMs collected, webhook errors and denials, VM ready p99, provider errors and no leader", () => {
    const watched = new Set(rules.flatMap((rule) => [...String(rule.expr).matchAll(/\bpeerpods_[a-z0-9_]+/g)].map((m) => exported(m[0])?.name)));
    for (const metric of ["peerpods_gc_deleted_total", "peerpods_admission_requests_total", "peerpods_vm_ready_seconds", "peerpods_provider_errors_total", "peerpods_leader"]) {
      assert.ok(watched.has(metric), `no alert watches ${metric}`);
    }
    assert.ok(rules.some((rule) => /result="denied"/.test(String(rule.expr))), "no alert on denials");
    assert.ok(rules.some((rule) => /histogram_quantile\(0\.99,[^)]*peerpods_vm_ready_seconds_bucket/.test(String(rule.expr))), "no alert on the VM ready p99");
  });

  it("every Grafana panel queries only metrics and labels peerpods exports", () => {
    const dashboard = JSON.parse(readFileSync(new URL("grafana-dashboard.json", MONITORING), "utf8")) as { panels?: { title?: string; targets?: { expr?: string }[] }[] };
    const targets = (dashboard.panels ?? []).flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr ?? "" })));
    assert.ok(targets.length > 0);
    assert.deepEqual(
      targets.flatMap(({ panel, expr }) => metricProblems(expr).map((problem) => `${panel}: ${problem}`)),
      [],
    );
  });

  it("the check itself refuses an unknown metric and a label the metric lacks", () => {
    assert.deepEqual(metricProblems('rate(peerpods_not_a_metric_total[5m]) + peerpods_leader{zone="a"}'), ["peerpods_not_a_metric_total is not exported", "peerpods_leader has no label zone"]);
    assert.deepEqual(metricProblems("histogram_quantile(0.99, rate(peerpods_vm_ready_seconds_bucket{le=\"+Inf\"}[5m]))"), []);
  });
});
