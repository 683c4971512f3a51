import { join } from "node:path";

/** Each sandbox's folder under the pods dir holds the agent socket the Kata shim opens, and the record that survives a restart. */
export const SOCKET_FILE = "agent.ttrpc";
export const RECORD_FILE = "vm.json";

/** Kata's sandbox ids are containerd's: 64 hex characters. */
export const KATA_SANDBOX_ID_LENGTH = 64;
/** A unix socket path holds at most 107 bytes (sun_path is 108 with the terminating NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** A sandbox's agent socket. */
export const agentSocketPath = (podsDir: string, sandboxId: string): string => join(podsDir, sandboxId, SOCKET_FILE);

const KATA_ID = "x".repeat(KATA_SANDBOX_ID_LENGTH);
/** The longest pods dir whose sandbox sockets fit: 30 bytes. */
export const MAX_PODS_DIR_BYTES = MAX_SOCKET_PATH_BYTES - Buffer.byteLength(`/${KATA_ID}/${SOCKET_FILE}`);

/** Why the agent sockets of Kata's sandboxes cannot live under `podsDir`, or undefined when they fit. */
export function podsDirProblem(podsDir: string): string | undefined {
  const longest = Buffer.byteLength(agentSocketPath(podsDir, KATA_ID));
  if (longest <= MAX_SOCKET_PATH_BYTES) return undefined;
  return (
    `is too long: a sandbox's agent socket <dir>/<${KATA_SANDBOX_ID_LENGTH}-character sandbox id>/${SOCKET_FILE} would be ${longest} bytes, ` +
    `over the ${MAX_SOCKET_PATH_BYTES}-byte limit of a unix socket path; use a folder of at most ${MAX_PODS_DIR_BYTES} bytes`
  );
}
