import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Keys whose values must never reach a log line (provider credentials, tokens, keys). */
const REDACTED_PATHS = [
  "*.secretAccessKey",
  "*.accessKeyId",
  "*.sessionToken",
  "*.token",
  "*.password",
  "*.authorization",
  "*.key",
];

/** How long a buffered log line may wait for the next write. */
export const LOG_FLUSH_MS = 100;

/**
 * Structured JSON logs on stdout (or `dest`). Child loggers carry `part` and, for pod decisions, `pod: namespace/name`.
 * Lines are buffered up to 4 KiB or LOG_FLUSH_MS and written in one write: the webhook logs every
 * admission, and a write per line cost a fifth of its CPU at 1,000 req/s. Exit flushes what is
 * buffered; a SIGKILL loses at most that.
 */
export function createLogger(level: LevelWithSilent = "info", dest: number | string = 1): Logger {
  const destination = pino.destination({ dest, sync: false, minLength: 4096, periodicFlush: LOG_FLUSH_MS });
  return pino(
    {
      level,
      base: { app: "peerpods" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A logger that drops everything; for unit tests and library use. */
export const silentLogger: Logger = pino({ level: "silent" });
