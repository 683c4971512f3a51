/** Reading Prometheus text exposition in the benchmarks. */

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Sum of the samples named `name` (a counter, or a histogram's `_sum` or `_count`) whose labels include `labels`. */
export function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = SAMPLE.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? "").matchAll(LABEL)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) sum += Number(match[3]);
  }
  return sum;
}

/** Mean of a histogram or summary (`_sum` ÷ `_count`) between two scrapes, in the metric's unit; NaN without observations. */
export function meanBetween(before: string, after: string, name: string, labels: Record<string, string> = {}): number {
  const delta = (suffix: string): number => sampleSum(after, `${name}${suffix}`, labels) - sampleSum(before, `${name}${suffix}`, labels);
  return delta("_sum") / delta("_count");
}
