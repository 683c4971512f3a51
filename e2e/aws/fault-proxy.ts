import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Fault {
  /** EC2 action to fail (e.g. RunInstances); any action when omitted. */
  action?: string;
  /** EC2 error code in the answer, e.g. RequestLimitExceeded. */
  code: string;
  status: number;
  /** How many matching calls fail before calls pass again. */
  times: number;
}

/**
 * An HTTP proxy in front of moto that sees every EC2 call (action names, in order) and answers
 * injected faults in EC2's own error format, the way EC2 throttles or runs out of capacity.
 */
export class FaultProxy {
  /** Every call received, failed or forwarded, with its query parameters. */
  readonly calls: URLSearchParams[] = [];
  /** Actions of the calls answered with a fault. */
  readonly faulted: string[] = [];
  #faults: Fault[] = [];
  #server: Server | undefined;

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    const server = createServer((req, res) => void this.#handle(req, res));
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  inject(fault: Fault): void {
    this.#faults.push({ ...fault });
  }

  /** Forgets recorded calls and pending faults. */
  reset(): void {
    this.calls.length = 0;
    this.faulted.length = 0;
    this.#faults = [];
  }

  count(action: string): number {
    return this.calls.filter((call) => call.get("Action") === action).length;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const params = new URLSearchParams(body.toString("utf8"));
    const action = params.get("Action") ?? "";
    this.calls.push(params);
    const fault = this.#faults.find((candidate) => candidate.times > 0 && (candidate.action === undefined || candidate.action === action));
    if (fault) {
      fault.times -= 1;
      this.faulted.push(action);
      res.writeHead(fault.status, { "content-type": "text/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${fault.code}</Code><Message>injected ${fault.code}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`,
      );
      return;
    }
    const url = new URL(req.url ?? "/", this.target);
    const upstream = request(url, { method: req.method, headers: { ...req.headers, host: url.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", (error) => {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(error.message);
    });
    upstream.end(body);
  }
}
