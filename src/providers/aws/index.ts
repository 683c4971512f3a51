import { EC2Client } from "@aws-sdk/client-ec2";
import type { Provider, ProviderOptions } from "../types.js";
import { instrument } from "./instrument.js";
import { AwsProvider } from "./provider.js";
import { parseAwsSettings } from "./settings.js";

/** Builds the EC2 client from the policy's settings; credentials come from the standard AWS chain. */
export async function createProvider(settings: Record<string, unknown> | undefined, options: ProviderOptions): Promise<Provider> {
  const parsed = parseAwsSettings(settings);
  const client = new EC2Client({
    region: parsed.region,
    ...(parsed.endpoint !== undefined && { endpoint: parsed.endpoint }),
    maxAttempts: parsed.maxAttempts,
    requestHandler: { requestTimeout: parsed.requestTimeoutMs, connectionTimeout: Math.min(parsed.requestTimeoutMs, 5_000) },
  });
  instrument(client);
  options.log.info({ region: parsed.region, endpoint: parsed.endpoint, subnets: parsed.subnetIds.length }, "aws provider ready");
  return new AwsProvider(client, parsed, options);
}
