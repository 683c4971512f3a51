import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureCerts } from "../../src/certs/generate.js";

export interface ClusterPki {
  /** CA of the apiserver's serving certificate; also the cluster's root CA handed to pods. */
  caFile: string;
  servingCert: string;
  servingKey: string;
  /** Service-account token signing key pair. */
  serviceAccountKey: string;
  serviceAccountPub: string;
  /** `--token-auth-file`: one admin (system:masters) token, and one per node (system:node:NAME in system:nodes). */
  tokenFile: string;
  adminToken: string;
  /** Node name → its kubelet's token: the Node authorizer and NodeRestriction hold it to that node. */
  nodeTokens: Record<string, string>;
}

/** Fresh credentials for one cluster and the kubelets of `nodes`, written under `dir`. */
export async function createPki(dir: string, nodes: readonly string[] = []): Promise<ClusterPki> {
  await mkdir(dir, { recursive: true });
  const certs = await ensureCerts({
    outDir: dir,
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
    ipAddresses: ["127.0.0.1"],
    validDays: 30,
    force: true,
  });
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const serviceAccountKey = join(dir, "sa.key");
  const serviceAccountPub = join(dir, "sa.pub");
  await writeFile(serviceAccountKey, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await writeFile(serviceAccountPub, publicKey.export({ type: "spki", format: "pem" }));
  const token = (): string => randomBytes(24).toString("hex");
  const adminToken = token();
  const nodeTokens = Object.fromEntries(nodes.map((node) => [node, token()]));
  const lines = [`${adminToken},admin,admin,system:masters`, ...Object.entries(nodeTokens).map(([node, secret]) => `${secret},system:node:${node},node-${node},system:nodes`)];
  const tokenFile = join(dir, "tokens.csv");
  await writeFile(tokenFile, `${lines.join("\n")}\n`, { mode: 0o600 });
  return { caFile: certs.files.ca, servingCert: certs.files.cert, servingKey: certs.files.key, serviceAccountKey, serviceAccountPub, tokenFile, adminToken, nodeTokens };
}
