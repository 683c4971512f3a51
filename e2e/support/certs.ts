import { join } from "node:path";
import { ensureCerts, type CertResult } from "../../src/certs/generate.js";
import { cacheDir } from "../cluster/paths.js";

let certs: Promise<CertResult> | undefined;

/** Serving certificates for a peerpods on this machine (localhost, 127.0.0.1), reused while valid. */
export function localCerts(): Promise<CertResult> {
  return (certs ??= ensureCerts({ outDir: join(cacheDir(), "e2e-certs"), dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validDays: 90, force: false }));
}
