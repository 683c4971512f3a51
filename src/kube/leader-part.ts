import { leader } from "../metrics/leader.js";
import type { Logger } from "../log/logger.js";
import type { PartContext, RunningPart } from "../parts.js";
import { startLeaderElection } from "./leader.js";

/**
 * Runs a part on one replica at a time: started when this replica takes the Lease `lease`, stopped
 * when it loses it. With `--no-leader-elect` it runs at once (one replica only).
 */
export async function runWhileLeading(context: PartContext, lease: string, log: Logger, start: () => Promise<RunningPart>): Promise<RunningPart> {
  const { config } = context;
  if (!config.leaderElect) {
    const part = await start();
    leader.set({ lease }, 1);
    return part;
  }
  const graceMs = config.shutdownGraceSeconds * 1000;
  leader.set({ lease }, 0);
  let running: Promise<RunningPart | undefined> | undefined;
  const election = startLeaderElection(context.kube(), {
    namespace: config.leaderElectionNamespace,
    name: lease,
    log,
    onStartedLeading: () => {
      leader.set({ lease }, 1);
      running = start().catch((error: unknown) => {
        log.error({ err: error, lease }, "could not start while leading");
        return undefined;
      });
    },
    onStoppedLeading: async () => {
      leader.set({ lease }, 0);
      const current = running;
      running = undefined;
      await (await current)?.stop(graceMs);
    },
  });
  return { stop: () => election.stop() };
}
