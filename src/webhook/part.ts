import { healthApp } from "../http/apps.js";
import { startServer } from "../http/server.js";
import type { PartContext, RunningPart } from "../parts.js";
import { mutateRoute } from "./route.js";

/** The HTTPS admission webhook: `POST /mutate`, `/healthz`, `/readyz`. */
export async function startWebhook({ config, policy, log }: PartContext): Promise<RunningPart> {
  const partLog = log.child({ part: "webhook" });
  const server = await startServer({
    name: "webhook",
    host: config.bindAddress,
    port: config.webhookPort,
    tls: { certFile: config.tlsCert, keyFile: config.tlsKey },
    fastRoutes: { "/mutate": mutateRoute({ policy, log: partLog, maxBodyBytes: config.maxBodyBytes }) },
    app: healthApp(() => true),
    log: partLog,
  });
  return { stop: (graceMs) => server.close(graceMs) };
}
