import type { EC2Client } from "@aws-sdk/client-ec2";
import { awsApiCalls, awsApiRetries, awsApiSeconds } from "../../metrics/aws.js";
import { errorCode } from "./errors.js";

interface WithMetadata {
  $metadata?: { attempts?: number };
}

/** Counts and times every EC2 call of `client` around the SDK's retry loop, so retries show too. */
export function instrument(client: EC2Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const action = (context.commandName ?? "Unknown").replace(/Command$/, "");
      const stopTimer = awsApiSeconds.startTimer({ action });
      let outcome = "ok";
      let metadata: WithMetadata["$metadata"];
      try {
        const result = await next(args);
        metadata = (result.output as WithMetadata).$metadata;
        return result;
      } catch (error) {
        outcome = errorCode(error);
        metadata = (error as WithMetadata).$metadata;
        throw error;
      } finally {
        stopTimer();
        awsApiCalls.inc({ action, outcome });
        const retries = (metadata?.attempts ?? 1) - 1;
        if (retries > 0) awsApiRetries.inc({ action }, retries);
      }
    },
    { step: "initialize", name: "peerpodsMetrics" },
  );
}
