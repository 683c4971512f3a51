import type { z } from "zod";
import { describeErrors, validationErrors } from "../policy/issues.js";
import { ProviderError } from "./types.js";

/** A provider's settings block, validated with defaults filled in; the error names every bad field by its policy path. */
export function parseProviderSettings<S extends z.ZodType>(provider: string, schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  throw new ProviderError("invalid", `invalid ${provider} provider settings: ${describeErrors(validationErrors(parsed.error, ["provider", provider]))}`);
}
