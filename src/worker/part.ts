import { startLeaderElection } from "../kube/leader.js";
import { leader } from "../metrics/worker.js";
import type { PartContext, RunningPart } from "../parts.js";
import { rateLimited, TokenBucket } from "../providers/ratelimit.js";
import { startController, type Controller } from "./controller.js";

export const LEASE_NAME = "peerpods-worker";

/** How often booting VMs are checked, with one provider listing for all of them. */
const READY_POLL_MS = 200;

/** The VM lifecycle worker. With leader election (the default) only the replica holding the Lease runs it. */
export async function startWorker(context: PartContext): Promise<RunningPart> {
  const { config } = context;
  const log = context.log.child({ part: "worker" });
  const kc = context.kube();
  const graceMs = config.shutdownGraceSeconds * 1000;
  const run = async (): Promise<Controller> =>
    startController({
      kc,
      provider: rateLimited(await context.provider(), new TokenBucket(config.providerQps, config.providerBurst)),
      policy: context.policy,
      events: context.events(),
      clusterId: config.clusterId,
      concurrency: config.workerConcurrency,
      gcIntervalMs: config.gcInterval * 1000,
      gcGraceMs: config.gcGrace * 1000,
      readyPollMs: READY_POLL_MS,
      log,
    });

  if (!config.leaderElect) {
    const controller = await run();
    leader.set(1);
    return { stop: (ms) => controller.stop(ms) };
  }

  let controller: Promise<Controller | undefined> | undefined;
  const election = startLeaderElection(kc, {
    namespace: config.leaderElectionNamespace,
    name: LEASE_NAME,
    log,
    onStartedLeading: () => {
      leader.set(1);
      controller = run().catch((error: unknown) => {
        log.error({ err: error }, "worker could not start");
        return undefined;
      });
    },
    onStoppedLeading: async () => {
      leader.set(0);
      const running = controller;
      controller = undefined;
      await (await running)?.stop(graceMs);
    },
  });
  return { stop: () => election.stop() };
}
