import { Gauge } from "prom-client";
import { registry } from "./registry.js";

export const leader = new Gauge({
  name: "peerpods_leader",
  help: "1 while this replica holds the lease (peerpods-worker, peerpods-advertiser) and runs that part.",
  labelNames: ["lease"] as const,
  registers: [registry],
});
