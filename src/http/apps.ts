import express, { type Express } from "express";
import type { Registry } from "prom-client";

/** Readiness is a function so each part can say when it is ready (e.g. caches synced). */
export type ReadyCheck = () => boolean;

/** The express app behind a TLS port: health endpoints; hot POST routes are served before it. */
export function healthApp(ready: ReadyCheck): Express {
  const app = express();
  app.disable("x-powered-by");
  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok");
  });
  app.get("/readyz", (_req, res) => {
    if (ready()) res.type("text/plain").send("ok");
    else res.status(503).type("text/plain").send("not ready");
  });
  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });
  return app;
}

/** The plain-HTTP app Prometheus scrapes. */
export function metricsApp(registry: Registry, ready: ReadyCheck): Express {
  const app = healthApp(ready);
  const metrics = express.Router();
  metrics.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  const wrapper = express();
  wrapper.disable("x-powered-by");
  wrapper.use(metrics);
  wrapper.use(app);
  return wrapper;
}
