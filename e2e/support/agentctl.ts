import { spawn } from "node:child_process";

/** What peerpods-agentctl printed for one command: the call's fields, or the refusal's code and message. */
export type AgentctlResult = Record<string, unknown> & { code?: string; message?: string };

/** Mutual TLS to the VM's agent port: a node-side TLS folder and the instance name the VM's certificate carries. */
export interface AgentctlTls {
  dir: string;
  instance: string;
}

/** Runs peerpods-agentctl (src/runtime/cmd/peerpods-agentctl) against `endpoint` with `input` on its stdin. */
export function agentctl(binary: string, endpoint: string, args: string[], input = "", tls?: AgentctlTls): Promise<AgentctlResult> {
  return new Promise((resolve, reject) => {
    const tlsArgs = tls ? ["-tls-dir", tls.dir, "-instance", tls.instance] : [];
    const child = spawn(binary, ["-agent", endpoint, ...tlsArgs, "-timeout", "120s", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`peerpods-agentctl ${args.join(" ")} exited ${code}: ${stderr.trim()}`));
      try {
        resolve(JSON.parse(stdout) as AgentctlResult);
      } catch {
        reject(new Error(`peerpods-agentctl ${args.join(" ")} printed no JSON: ${stdout}${stderr}`));
      }
    });
    child.stdin.end(input);
  });
}
