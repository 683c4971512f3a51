import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCerts } from "../certs/generate.js";

/** A fresh CA and serving certificate for 127.0.0.1/localhost in a temp folder. */
export async function testCerts(): Promise<{ dir: string; certFile: string; keyFile: string; caFile: string; ca: string }> {
  const dir = await mkdtemp(join(tmpdir(), "peerpods-certs-"));
  const result = await ensureCerts({ outDir: dir, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 2, force: true });
  return { dir, certFile: result.files.cert, keyFile: result.files.key, caFile: result.files.ca, ca: await readFile(result.files.ca, "utf8") };
}
