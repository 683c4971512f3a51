import { mkdtempSync, rmSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCerts } from "../certs/generate.js";

let root: string | undefined;

/**
 * One folder for all the certificates of this test process, removed when the process exits:
 * the certificates are handed to servers and child processes that outlive the test that made
 * them, so no test hook knows when they are no longer read.
 */
function certsRoot(): string {
  if (!root) {
    const dir = mkdtempSync(join(tmpdir(), "peerpods-certs-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    root = dir;
  }
  return root;
}

/** A fresh CA and serving certificate for 127.0.0.1/localhost in a temp folder. */
export async function testCerts(): Promise<{ dir: string; certFile: string; keyFile: string; caFile: string; ca: string }> {
  const dir = await mkdtemp(join(certsRoot(), "set-"));
  const result = await ensureCerts({ outDir: dir, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 2, force: true });
  return { dir, certFile: result.files.cert, keyFile: result.files.key, caFile: result.files.ca, ca: await readFile(result.files.ca, "utf8") };
}
