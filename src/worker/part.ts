import { runWhileLeading } from "../kube/leader-part.js";
import type { PartContext, RunningPart } from "../parts.js";
import { rateLimited, TokenBucket } from "../providers/ratelimit.js";
import { startController } from "./controller.js";
import { errorsCounted } from "./counted-provider.js";

export const LEASE_NAME = "peerpods-worker";

/** How often booting VMs are checked, with one provider listing for all of them. */
const READY_POLL_MS = 200;

/** The VM lifecycle worker. With leader election (the default) only the replica holding the Lease runs it. */
export async function startWorker(context: PartContext): Promise<RunningPart> {
  const { config } = context;
  const log = context.log.child({ part: "worker" });
  const kc = context.kube();
  return runWhileLeading(context, LEASE_NAME, log, async () =>
    startController({
      kc,
      pods: context.pods(),
      provider: errorsCounted(rateLimited(await context.provider(), new TokenBucket(config.providerQps, config.providerBurst))),
      health: context.providerHealth(),
      policy: context.policy,
      events: context.events(),
      clusterId: config.clusterId,
      concurrency: config.workerConcurrency,
      gcIntervalMs: config.gcInterval * 1000,
      gcGraceMs: config.gcGrace * 1000,
      readyPollMs: READY_POLL_MS,
      log,
    }),
  );
}
