import { TAG, type Tags } from "./types.js";

/** A claimed warm-pool VM's tags: the pod's added, the pool marker gone, anything else kept. */
export function claimedTags(current: Tags, podTags: Tags): Tags {
  const { [TAG.pool]: _pool, ...rest } = current;
  return { ...rest, ...podTags };
}
