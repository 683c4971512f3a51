import { stringify } from "yaml";

/** EC2 accepts at most 16 KiB of user data before base64. */
export const MAX_USER_DATA_BYTES = 16 * 1024;

/**
 * The instance's user data: a cloud-init document that writes the pod's agent configuration to
 * `path` (root-only readable), base64-encoded as RunInstances wants it. It carries only what the
 * caller passed; cloud credentials never go here (the VM gets an instance profile if it needs any).
 */
export function cloudInitUserData(agentConfig: string, path: string): string {
  const document = `#cloud-config\n${stringify({
    write_files: [{ path, permissions: "0600", owner: "root:root", encoding: "b64", content: Buffer.from(agentConfig).toString("base64") }],
  })}`;
  const bytes = Buffer.byteLength(document);
  if (bytes > MAX_USER_DATA_BYTES) throw new RangeError(`user data is ${bytes} bytes, EC2 allows ${MAX_USER_DATA_BYTES}`);
  return Buffer.from(document).toString("base64");
}
