import { leader } from "../metrics/leader.js";
import type { Logger } from "../log/logger.js";
import type { PartContext, RunningPart } from "../parts.js";
import { startLeaderElection } from "./leader.js";

/**
 * Runs a part on one replica at a time: started when this replica takes the Lease `lease`, stopped
 * when it loses it. With `--no-leader-elect` it runs at once (one replica only).
 *
 * Losing the Lease stops the part without a grace period (another replica may lead already), so
 * its work in flight is cancelled; only a shutdown gives it one. A part that fails to start gives
 * the Lease back to another replica, and the readiness check named after the Lease fails until a
 * start here succeeds.
 */
export async function runWhileLeading(
  context: Pick<PartContext, "config" | "kube" | "addReadyCheck">,
  lease: string,
  log: Logger,
  start: () => Promise<RunningPart>,
  elect: typeof startLeaderElection = startLeaderElection,
): Promise<RunningPart> {
  const { config } = context;
  if (!config.leaderElect) {
    const part = await start();
    leader.set({ lease }, 1);
    return part;
  }
  leader.set({ lease }, 0);
  let running: Promise<RunningPart | undefined> | undefined;
  let failed = false;
  context.addReadyCheck(lease, () => !failed);
  let stopGraceMs = 0;
  const election = elect(context.kube(), {
    namespace: config.leaderElectionNamespace,
    name: lease,
    log,
    onStartedLeading: () => {
      leader.set({ lease }, 1);
      running = start().then(
        (part) => {
          failed = false;
          return part;
        },
        (error: unknown) => {
          failed = true;
          leader.set({ lease }, 0);
          log.error({ err: error, lease }, "could not start while leading; the Lease goes to another replica");
          void election.resign();
          return undefined;
        },
      );
    },
    onStoppedLeading: async () => {
      leader.set({ lease }, 0);
      const current = running;
      running = undefined;
      await (await current)?.stop(stopGraceMs);
    },
  });
  return {
    stop: (graceMs) => {
      stopGraceMs = graceMs;
      return election.stop();
    },
  };
}
