import { z } from "zod";

/** A latency: a fixed number of milliseconds, or a log-normal distribution given by its median and 99th percentile. */
const latency = z.union([
  z.number().min(0).max(3_600_000),
  z
    .strictObject({ median: z.number().min(0).max(3_600_000), p99: z.number().min(0).max(3_600_000) })
    .refine((d) => d.p99 >= d.median, { message: "p99 must be at least the median" }),
]);

export type Latency = z.output<typeof latency>;

const probability = z.number().min(0).max(1);

export const simSettingsSchema = z.strictObject({
  /** How long the create call takes before it answers. */
  createMs: latency.default(100),
  /** After create answered, how long until the VM reports ready. */
  readyMs: latency.default(500),
  /** How long handing a warm-pool VM to a pod takes (retag and data delivery). */
  claimMs: latency.default(20),
  /** How long the delete call takes. */
  deleteMs: latency.default(50),
  /** Share of create/delete/claim calls that fail with a retryable (5xx-like) error before doing anything. */
  errorRate: probability.default(0),
  /** Share of creates that make the instance but lose the response: the caller sees a retryable error. */
  crashRate: probability.default(0),
  /** API rate limit; calls over it fail as throttled (retryable). */
  throttle: z.strictObject({ ratePerSecond: z.number().positive(), burst: z.number().int().min(1) }).optional(),
  /** Most live instances the account may hold; creates beyond it fail with a quota error. */
  capacity: z.number().int().min(0).optional(),
  /** Reported health. */
  healthy: z.boolean().default(true),
  /** While this file exists the cloud reports itself unhealthy, with the file's content as the reason. */
  unhealthyFile: z.string().min(1).optional(),
  /** While unhealthy, every API call fails as unavailable too (a real outage), not only the health check. */
  unhealthyFailsCalls: z.boolean().default(false),
  /** Where the inventory is kept so it outlives a restart; default `<stateDir>/sim-<clusterId>.json`; null keeps it in memory. */
  inventoryFile: z.string().min(1).nullable().optional(),
  /** Seed for the random draws (latency, errors, crashes), for repeatable runs. */
  seed: z.number().int().optional(),
});

export type SimSettings = z.output<typeof simSettingsSchema>;
