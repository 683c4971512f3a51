import { ProviderError, TAG, type ClaimSpec, type Instance, type Tags } from "./types.js";

/** A claimed warm-pool VM's tags: the pod's added, the pool marker gone, anything else kept. */
export function claimedTags(current: Tags, podTags: Tags): Tags {
  const { [TAG.pool]: _pool, ...rest } = current;
  return { ...rest, ...podTags };
}

/**
 * Whether VM `id` (`instance`, as the provider sees it now) may go to the pod of `claim`, the same
 * rule for every provider: a VM gone or going is `notFound`; one still tagged as pool may be claimed;
 * one already carrying the pod's UID is that pod's from an earlier claim (`owned`: claiming again
 * changes nothing); any other belongs to another pod (`invalid`).
 */
export function claimCheck(id: string, instance: Instance | undefined, claim: ClaimSpec): { instance: Instance; owned: boolean } {
  if (!instance || instance.state === "terminated" || instance.state === "stopping") {
    throw new ProviderError("notFound", `VM ${id} is ${instance?.state ?? "gone"}`);
  }
  if (instance.tags[TAG.pool] !== undefined) return { instance, owned: false };
  if (instance.tags[TAG.podUid] === claim.tags[TAG.podUid]) return { instance, owned: true };
  throw new ProviderError("invalid", `VM ${id} is not a pool VM: it belongs to pod ${instance.tags[TAG.podUid] ?? "(none)"}`);
}
