/**
 * An HTTPS server that does nothing, the baseline the benchmarks compare peerpods with: as a scheduler
 * extender `POST /filter` passes every node it is given and `POST /prioritize` scores them all 0 (what
 * any extender round trip costs the scheduler, perf:scheduling); `POST /mutate` admits every
 * AdmissionReview unchanged (what a TLS round trip of the review costs, perf:webhook).
 * Usage: node --import tsx e2e/perf/noop-server.ts PORT CERT_FILE KEY_FILE
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const [port, certFile, keyFile] = process.argv.slice(2);
if (!port || !certFile || !keyFile) throw new Error("usage: noop-server PORT CERT_FILE KEY_FILE");

interface Args {
  NodeNames?: string[] | null;
  Nodes?: { items?: { metadata?: { name?: string } }[] } | null;
  request?: { uid?: string };
}

const names = (args: Args): string[] => args.NodeNames ?? (args.Nodes?.items ?? []).map((node) => node.metadata?.name ?? "");

function answer(path: string | undefined, args: Args): string {
  if (path?.startsWith("/mutate")) return JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: args.request?.uid ?? "", allowed: true } });
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
server.listen(Number(port), "127.0.0.1", () => console.log(`noop server listening on 127.0.0.1:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
