import { Counter } from "prom-client";
import { registry } from "./registry.js";

export const logLinesDropped = new Counter({
  name: "peerpods_log_lines_dropped_total",
  help: "Log lines dropped because stdout took nothing while the log's buffer was full.",
  registers: [registry],
});
