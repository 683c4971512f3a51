import { connect } from "node:net";

/**
 * Runs one QMP command on qemu's monitor socket: reads the greeting, negotiates capabilities,
 * sends `command` and resolves with its `return` value (events in between are skipped).
 */
export function qmpCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const timer = setTimeout(() => fail(new Error(`QMP ${command} timed out after ${timeoutMs} ms`)), timeoutMs);
    let buffered = "";
    let stage: "greeting" | "capabilities" | "command" = "greeting";
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    const fail = (error: Error): void => {
      finish();
      reject(error);
    };
    const onMessage = (message: { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string }): void => {
      if (message.event) return;
      if (message.error) return fail(new Error(`QMP ${command}: ${message.error.desc ?? "error"}`));
      if (stage === "greeting" && message.QMP) {
        stage = "capabilities";
        socket.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
      } else if (stage === "capabilities" && "return" in message) {
        stage = "command";
        socket.write(`${JSON.stringify({ execute: command })}\n`);
      } else if (stage === "command" && "return" in message) {
        finish();
        resolve(message.return);
      }
    };
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        try {
          onMessage(JSON.parse(line) as Parameters<typeof onMessage>[0]);
        } catch (error) {
          return fail(new Error(`QMP sent something that is not JSON: ${line.slice(0, 200)}`, { cause: error }));
        }
      }
    });
    socket.on("error", fail);
    // `quit` ends the connection instead of answering when qemu exits first.
    socket.on("close", () => (command === "quit" && stage === "command" ? (finish(), resolve(undefined)) : fail(new Error(`QMP connection closed during ${command}`))));
  });
}
