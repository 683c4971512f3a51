import type { z } from "zod";

/** One thing wrong with a policy (or a provider's settings block), at its dotted path. */
export interface PolicyValidationError {
  path: string;
  message: string;
}

/** zod's issues as path/message pairs, each path under `prefix`; `(root)` for the document itself. */
export function validationErrors(error: z.ZodError, prefix: readonly PropertyKey[] = []): PolicyValidationError[] {
  return error.issues.map((issue) => ({
    path: [...prefix, ...issue.path].map(String).filter(Boolean).join(".") || "(root)",
    message: issue.message,
  }));
}

/** All errors on one line, `path: message; ...`, for logs, Events and thrown errors. */
export function describeErrors(errors: readonly PolicyValidationError[]): string {
  return errors.map((error) => `${error.path}: ${error.message}`).join("; ");
}
