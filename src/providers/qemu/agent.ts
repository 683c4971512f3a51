import { connect } from "node:net";
import { ProviderError } from "../types.js";
import { workloadScript } from "./workload.js";

/** A reset before the guest answered anything: qemu's user-mode network resets a connection the guest has not accepted yet. */
class UnansweredReset extends Error {}

const RESET_RETRIES = 3;
const RESET_RETRY_DELAY_MS = 250;

/**
 * One session with the guest agent's line protocol (src/providers/qemu/guest/agent-session.sh) on
 * its forwarded loopback port: sends `commands`, then `quit`, and resolves with one answer line per
 * command. The agent serves one connection at a time, so a connection reset before any answer is
 * tried again a few times (the commands are safe to repeat: nothing was answered, so nothing ran to
 * completion that a repeat would change).
 */
export async function agentSession(port: number, commands: readonly string[], timeoutMs = 10_000): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await oneSession(port, commands, timeoutMs);
    } catch (error) {
      if (!(error instanceof UnansweredReset) || attempt >= RESET_RETRIES) throw error instanceof UnansweredReset ? (error.cause as Error) : error;
      await new Promise((resolve) => setTimeout(resolve, RESET_RETRY_DELAY_MS));
    }
  }
}

function oneSession(port: number, commands: readonly string[], timeoutMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let answer = "";
    socket.setEncoding("utf8");
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`the VM's agent on port ${port} did not answer within ${timeoutMs} ms`)));
    socket.on("data", (chunk: string) => (answer += chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      reject(error.code === "ECONNRESET" && answer === "" ? new UnansweredReset(error.message, { cause: error }) : error);
    });
    socket.on("close", () => {
      const lines = answer.split("\n").filter(Boolean);
      if (lines.length < commands.length) reject(new Error(`the VM's agent on port ${port} answered ${lines.length} of ${commands.length} commands`));
      else resolve(lines);
    });
    socket.write([...commands, "quit"].map((line) => `${line}\n`).join(""));
  });
}

/** The commands that hand a pod's data (and the workload it implies, if any) to a booted VM. */
export function podDataCommands(userData: string, workload: string | undefined): string[] {
  const base64 = (text: string): string => Buffer.from(text).toString("base64");
  const commands = [`user-data ${base64(userData)}`];
  if (workload !== undefined) commands.push(`workload ${base64(workload)}`);
  return commands;
}

/**
 * Hands a pod's data to the booted VM `vmId` behind `port`. Only the pod that recorded the claim hands data
 * over, so a workload already started is its own (a retry after a crash) and not a refusal.
 */
export async function handOverPodData(vmId: string, port: number, userData: string): Promise<void> {
  try {
    const answers = await agentSession(port, podDataCommands(userData, workloadScript(userData)));
    const refused = answers.find((answer) => answer !== "ok" && answer !== "error: a workload was already started");
    if (refused) throw new Error(refused);
  } catch (error) {
    throw new ProviderError("retryable", `could not hand the pod's data to qemu VM ${vmId}: ${(error as Error).message}`, { cause: error });
  }
}
