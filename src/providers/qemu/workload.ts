/** What of a pod runs inside its VM: the first container's command when user-data carries one. */

const SHELLS = new Set(["sh", "ash", "bash", "dash"]);

/** Single-quotes a word for sh. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The script the VM runs for user-data `{"command": ["sh", "-c", "echo hi"], ...}` (the first
 * container's command and args): `sh -c SCRIPT [ARG0 ARGS...]` runs SCRIPT in busybox sh with
 * those positional arguments; any other argv is executed as is, which works for busybox applets
 * (echo, sleep, wget, ...) and exits 127 otherwise. No command, or user-data that is not such
 * JSON, means no workload. There are no container images in the VM.
 */
export function workloadScript(userData: string): string | undefined {
  let command: unknown;
  try {
    command = (JSON.parse(userData) as { command?: unknown } | null)?.command;
  } catch {
    return undefined;
  }
  if (!Array.isArray(command) || command.length === 0 || !command.every((word) => typeof word === "string")) return undefined;
  const argv = command as string[];
  const program = argv[0]!.split("/").pop()!;
  if (SHELLS.has(program) && argv[1] === "-c" && argv[2] !== undefined) {
    const positional = argv.slice(3);
    const setArgs = positional.length > 1 ? `set -- ${positional.slice(1).map(shellQuote).join(" ")}\n` : "";
    return `${setArgs}${argv[2]}\n`;
  }
  return `exec ${[program, ...argv.slice(1)].map(shellQuote).join(" ")}\n`;
}
