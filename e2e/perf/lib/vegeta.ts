/**
 * vegeta (Go), the open-loop load generator outside Node: built from the Go module proxy into the
 * cache folder like KWOK, so the webhook's paced rows can be checked against a client that has no
 * event loop or garbage collector of Node's.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildStamped, goInstall, goVersion, hash } from "../../cluster/build-steps.js";
import { cacheDir } from "../../cluster/paths.js";
import type { PacedResult } from "./paced.js";
import { percentile } from "./report.js";

const VEGETA_MODULE = "github.com/tsenart/vegeta/v12";
const VEGETA_VERSION = "v12.13.0";
const vegetaDir = (): string => join(cacheDir(), `vegeta-${VEGETA_VERSION}`);

/** Builds vegeta unless the cached build is current; returns its path. */
export async function ensureVegeta(): Promise<string> {
  const go = await goVersion();
  const pkg = `${VEGETA_MODULE}@${VEGETA_VERSION}`;
  const binary = join(vegetaDir(), "vegeta");
  await buildStamped({
    title: `vegeta ${VEGETA_VERSION}`,
    dir: vegetaDir(),
    key: hash([go, "-s -w", pkg]),
    outputs: [binary],
    build: () => goInstall({ label: `go install ${pkg}`, packages: [pkg], dir: vegetaDir(), flags: ["-ldflags", "-s -w"] }),
  });
  return binary;
}

export interface VegetaOptions {
  vegeta: string;
  url: string;
  caFile: string;
  body: string;
  rate: number;
  durationS: number;
  /** Folder for the body and results files. */
  dir: string;
}

/** POSTs `body` at `rate` per second over HTTP/1.1 keep-alive connections, as the apiserver does to a Node webhook. */
export async function vegetaLoad(options: VegetaOptions): Promise<PacedResult> {
  const bodyFile = join(options.dir, "vegeta-body.json");
  const results = join(options.dir, "vegeta-results.bin");
  await writeFile(bodyFile, options.body);
  const attack = ["attack", "-http2=false", `-rate=${options.rate}/1s`, `-duration=${options.durationS}s`, `-root-certs=${options.caFile}`, `-body=${bodyFile}`];
  await output(options.vegeta, [...attack, "-header=Content-Type: application/json", `-output=${results}`], `POST ${options.url}\n`);
  const lines = (await output(options.vegeta, ["encode", "--to", "json", results])).split("\n").filter(Boolean);
  const latencies: number[] = [];
  let errors = 0;
  let first = Infinity;
  let last = 0;
  for (const line of lines) {
    const result = JSON.parse(line) as { code: number; latency: number; timestamp: string };
    const sentAt = Date.parse(result.timestamp);
    first = Math.min(first, sentAt);
    last = Math.max(last, sentAt + result.latency / 1e6);
    if (result.code === 200) latencies.push(result.latency / 1e6);
    else errors += 1;
  }
  return {
    sent: lines.length,
    errors,
    reqPerSec: latencies.length / ((last - first) / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    p999Ms: percentile(latencies, 99.9),
  };
}

function output(command: string, args: string[], input = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(out).toString("utf8")) : reject(new Error(`vegeta ${args[0]} exited ${code}: ${err.slice(-2000)}`))));
    child.stdin.end(input);
  });
}
