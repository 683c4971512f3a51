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

/** Structured JSON logs on stdout. Child loggers carry `part` and, for pod decisions, `pod: namespace/name`. */
export function createLogger(level: LevelWithSilent = "info"): Logger {
  return pino({
    level,
    base: { app: "peerpods" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** A logger that drops everything; for unit tests and library use. */
export const silentLogger: Logger = pino({ level: "silent" });
