import { readFileSync, unwatchFile, watchFile } from "node:fs";
import type { SecureContextOptions } from "node:tls";
import type { Logger } from "../log/logger.js";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA bundle for client certificates; when set, clients must present one it signed. */
  clientCaFile?: string;
}

/** TLS 1.2+ with forward-secret AEAD suites only (TLS 1.3 suites are all strong). */
export const TLS_OPTIONS = {
  minVersion: "TLSv1.2",
  ciphers: [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ].join(":"),
  honorCipherOrder: true,
} as const;

export function readTlsContext(files: TlsFiles): SecureContextOptions {
  return {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ...(files.clientCaFile ? { ca: readFileSync(files.clientCaFile) } : {}),
  };
}

/**
 * Watches the certificate files (polling, so Kubernetes' symlink swaps of Secret volumes are seen)
 * and hands each new, loadable pair to `apply`. A half-written pair is ignored until it loads.
 */
export function watchTlsFiles(files: TlsFiles, apply: (context: SecureContextOptions) => void, log: Logger, intervalMs = 1000): () => void {
  const paths = [files.certFile, files.keyFile, ...(files.clientCaFile ? [files.clientCaFile] : [])];
  const reload = (): void => {
    try {
      apply(readTlsContext(files));
      log.info({ certFile: files.certFile }, "serving certificate reloaded");
    } catch (error) {
      log.warn({ err: error, certFile: files.certFile }, "certificate files changed but could not be loaded; keeping the previous ones");
    }
  };
  for (const path of paths) watchFile(path, { interval: intervalMs }, (now, before) => {
    if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino) reload();
  });
  return () => paths.forEach((path) => unwatchFile(path));
}
