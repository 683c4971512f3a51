import { Counter } from "prom-client";
import { registry } from "./registry.js";

export const logLinesDropped = new Counter({
  name: "peerpods_log_lines_dropped_total",
  help: "Log lines dropped because the log's destination (stdout) took none of them while 16 MiB waited.",
  registers: [registry],
});
