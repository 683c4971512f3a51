/**
 * A scheduler extender that does nothing: `POST /filter` passes every node it is given, `POST /prioritize`
 * scores them all 0. The baseline for perf:scheduling — what any extender round trip costs the scheduler.
 * Usage: node --import tsx e2e/perf/noop-extender.ts PORT CERT_FILE KEY_FILE
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const [port, certFile, keyFile] = process.argv.slice(2);
if (!port || !certFile || !keyFile) throw new Error("usage: noop-extender PORT CERT_FILE KEY_FILE");

interface Args {
  NodeNames?: string[] | null;
  Nodes?: { items?: { metadata?: { name?: string } }[] } | null;
}

const names = (args: Args): string[] => args.NodeNames ?? (args.Nodes?.items ?? []).map((node) => node.metadata?.name ?? "");

function answer(path: string | undefined, args: Args): string {
  if (path === "/prioritize") return JSON.stringify(names(args).map((Host) => ({ Host, Score: 0 })));
  return JSON.stringify({ Nodes: args.Nodes ?? null, NodeNames: args.NodeNames ?? null, FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error: "" });
}

const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    try {
      const body = answer(req.url, JSON.parse(Buffer.concat(chunks).toString("utf8")) as Args);
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    } catch (error) {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ Error: (error as Error).message }));
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => console.log(`noop extender listening on 127.0.0.1:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
