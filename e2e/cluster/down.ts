/** `npm run cluster:down`: stops the cluster started by `npm run cluster:up`. */
import { rmSync } from "node:fs";
import { devClusterFile } from "./paths.js";
import { isAlive, readDevCluster } from "./dev-cluster.js";
import { waitFor } from "../support/wait.js";

const cluster = readDevCluster();
if (!cluster) {
  rmSync(devClusterFile(), { force: true });
  console.log("no cluster is running");
} else {
  process.kill(cluster.pid, "SIGTERM");
  await waitFor(() => !isAlive(cluster.pid), { timeoutMs: 20_000, message: `cluster process ${cluster.pid} to exit` });
  console.log(`cluster at ${cluster.server} stopped`);
}
