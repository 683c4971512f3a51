import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { parsePolicy, type PolicyParseResult } from "./schema.js";

/** Reads a YAML or JSON policy document; throws with a one-line message when it is not parseable. */
export async function readPolicyDocument(path: string): Promise<unknown> {
  const text = await readFile(path, "utf8");
  try {
    return parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new Error(`${path} is not valid YAML or JSON: ${(error as Error).message.split("\n")[0]}`, { cause: error });
  }
}

/** Reads and validates a policy file (a whole PeerPodPolicy or its bare spec). */
export async function loadPolicyFile(path: string): Promise<PolicyParseResult> {
  try {
    return parsePolicy(await readPolicyDocument(path));
  } catch (error) {
    return { ok: false, errors: [{ path: "(file)", message: (error as Error).message }] };
  }
}
