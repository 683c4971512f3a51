import { Registry, collectDefaultMetrics } from "prom-client";

/** The one registry every part registers its metrics with; served on `GET /metrics`. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });
