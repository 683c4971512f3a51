import { ApiException } from "@kubernetes/client-node";

export interface ApiFailure {
  code: number;
  /** The apiserver's Status message, as kubectl would print it. */
  message: string;
}

/** Awaits a call that must fail and returns the apiserver's status code and message. */
export async function expectApiFailure(call: Promise<unknown>): Promise<ApiFailure> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const body: unknown = typeof error.body === "string" ? safeJson(error.body) : error.body;
    const message = (body as { message?: unknown } | undefined)?.message;
    return { code: error.code, message: typeof message === "string" ? message : String(error.body) };
  }
  throw new Error("the call succeeded but was expected to fail");
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}
