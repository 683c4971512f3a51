/**
 * `npm run perf:node-compare -- [--rounds N] --runtime LABEL=NODE[@DIR] ... BENCHMARK...`: runs each
 * benchmark (e2e/perf/BENCHMARK.ts) under each runtime, a Node.js binary and optionally another
 * checkout of peerpods (DIR, default this one), all runtimes back to back in every round with their
 * order reversed each round, so drift in the machine's load hits them alike. Prints the median of
 * every number each benchmark wrote to its results file, and each runtime's ratio to the first
 * (lib/report's median is the lower middle value for an even count, so odd round counts read best).
 * The benchmark and peerpods both run on the runtime's Node.js (peerpods is started with its execPath).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { median, printTable, type Row } from "./lib/report.js";

interface Runtime {
  label: string;
  node: string;
  dir: string;
}

function parseRuntime(spec: string): Runtime {
  const match = /^([^=]+)=([^@]+)(?:@(.+))?$/.exec(spec);
  if (!match) throw new Error(`--runtime ${spec}: expected LABEL=NODE or LABEL=NODE@DIR`);
  return { label: match[1]!, node: resolve(match[2]!), dir: resolve(match[3] ?? ".") };
}

/** Every number in a results file by its path; a table row is named by its first string (its label). */
function numbers(value: unknown, path: string, out: Map<string, number>): Map<string, number> {
  if (typeof value === "number") out.set(path, value);
  else if (Array.isArray(value)) value.forEach((item, i) => numbers(item, `${path} ${Object.values(item ?? {}).find((v) => typeof v === "string") ?? i}:`, out));
  else if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) if (key !== "targets") numbers(item, `${path} ${key}`.trim(), out);
  }
  return out;
}

function runOnce(benchmark: string, runtime: Runtime): Map<string, number> {
  console.log(`\n=== ${benchmark} on ${runtime.label} (${runtime.node}, ${runtime.dir})`);
  const run = spawnSync(runtime.node, ["--import", "tsx", `e2e/perf/${benchmark}.ts`], { cwd: runtime.dir, stdio: "inherit" });
  if (run.status !== 0) throw new Error(`${benchmark} on ${runtime.label} failed (${run.status ?? run.signal})`);
  const written = JSON.parse(readFileSync(join(runtime.dir, "e2e", "perf", "results", `${benchmark}.json`), "utf8")) as { machine: { node: string }; results: unknown };
  console.log(`(${written.machine.node})`);
  return numbers(written.results, "", new Map());
}

function report(benchmark: string, runtimes: Runtime[], samples: Map<string, number>[][], rounds: number): void {
  const rows: Row[] = [...samples[0]![0]!.keys()].map((metric) => {
    const medians = samples.map((runs) => median(runs.map((run) => run.get(metric) ?? NaN)));
    const row: Row = { metric };
    runtimes.forEach((runtime, r) => {
      row[runtime.label] = medians[r]!;
      if (r > 0) row[`${runtime.label} / ${runtimes[0]!.label}`] = Number((medians[r]! / medians[0]!).toFixed(3));
    });
    return row;
  });
  printTable(`${benchmark}: median of ${rounds} round(s) per runtime`, rows);
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: "string", default: "3" }, runtime: { type: "string", multiple: true, default: [] } } });
  const rounds = Number(values.rounds);
  const runtimes = values.runtime.map(parseRuntime);
  if (!Number.isInteger(rounds) || rounds < 1 || runtimes.length < 2 || positionals.length === 0) {
    throw new Error("usage: npm run perf:node-compare -- [--rounds N] --runtime LABEL=NODE[@DIR] --runtime ... BENCHMARK...");
  }
  for (const benchmark of positionals) {
    const samples: Map<string, number>[][] = runtimes.map(() => []);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? runtimes : [...runtimes].reverse();
      for (const runtime of order) samples[runtimes.indexOf(runtime)]!.push(runOnce(benchmark, runtime));
    }
    report(benchmark, runtimes, samples, rounds);
  }
}

try {
  main();
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
