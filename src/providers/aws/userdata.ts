import { dirname, join } from "node:path";
import { stringify } from "yaml";
import type { VmTlsFiles } from "../../agent-tls/issue.js";

/** The folder next to the agent configuration that holds the VM's agent certificate, key and trust bundle. */
export const AGENT_TLS_DIR_NAME = "agent-tls";

/** EC2 accepts at most 16 KiB of user data before base64. */
export const MAX_USER_DATA_BYTES = 16 * 1024;

/**
 * The instance's user data: a cloud-init document that writes the pod's agent configuration to
 * `path` (root-only readable), base64-encoded as RunInstances wants it. It carries only what the
 * caller passed; cloud credentials never go here (the VM gets an instance profile if it needs any).
 * The VM's agent TLS folder, when given, goes root-only next to it, in `agent-tls/` (the image
 * starts peerpods-agent with `--tls-dir` there).
 */
export function cloudInitUserData(agentConfig: string, path: string, agentTls?: VmTlsFiles): string {
  const file = (to: string, content: string) => ({ path: to, permissions: "0600", owner: "root:root", encoding: "b64", content: Buffer.from(content).toString("base64") });
  const tlsDir = join(dirname(path), AGENT_TLS_DIR_NAME);
  const tlsFiles = Object.entries(agentTls ?? {}).map(([name, content]) => file(join(tlsDir, name), content));
  const document = `#cloud-config\n${stringify({ write_files: [file(path, agentConfig), ...tlsFiles] })}`;
  const bytes = Buffer.byteLength(document);
  if (bytes > MAX_USER_DATA_BYTES) throw new RangeError(`user data is ${bytes} bytes, EC2 allows ${MAX_USER_DATA_BYTES}`);
  return Buffer.from(document).toString("base64");
}
