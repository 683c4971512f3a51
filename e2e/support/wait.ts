export interface WaitOptions {
  timeoutMs?: number;
  /** What is awaited, for the timeout error. */
  message: string;
  intervalMs?: number;
}

/**
 * Calls `probe` until it returns something other than undefined/null/false, retrying after errors.
 * On timeout the error names what was awaited and the probe's last error or result.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, options: WaitOptions): Promise<T> {
  const { timeoutMs = 10_000, message, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: string;
    try {
      const result = await probe();
      if (result !== undefined && result !== null && result !== false) return result;
      last = `last result: ${String(result)}`;
    } catch (error) {
      last = `last error: ${(error as Error).message ?? String(error)}`;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${message} (${last})`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
