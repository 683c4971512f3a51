import { pino, type Logger, type LevelWithSilent } from "pino";
import { logLinesDropped } from "../metrics/log.js";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Keys whose values must never reach a log line (provider credentials, tokens, keys), one level down: `{ provider: { token } }`. */
const REDACTED_KEYS = ["secretAccessKey", "accessKeyId", "sessionToken", "token", "password", "authorization", "key"];
const CENSOR = "[redacted]";

/**
 * Censors REDACTED_KEYS in the objects one level down. Lines without them (every per-request line)
 * pass untouched and allocate nothing; pino's own `redact` with wildcard paths cloned and re-parsed
 * its paths for every key of every line, a sixth of the webhook's allocation per admission.
 */
export function redactCredentials(fields: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const name in fields) {
    const value = fields[name];
    if (typeof value !== "object" || value === null || !REDACTED_KEYS.some((key) => key in value)) continue;
    const censored: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const key of REDACTED_KEYS) if (key in censored) censored[key] = CENSOR;
    copy ??= { ...fields };
    copy[name] = censored;
  }
  return copy ?? fields;
}

/** How long a buffered log line may wait for the next write. */
const LOG_FLUSH_MS = 100;
const LOG_BATCH_BYTES = 4096;
/** Past this much waiting for a stalled stdout, lines are dropped and counted rather than held in memory. */
const LOG_BUFFER_MAX_BYTES = 16 * 1024 * 1024;

/** The buffered destination of createLogger; `maxBufferedBytes` is for tests. */
export function logDestination(fd: number, maxBufferedBytes = LOG_BUFFER_MAX_BYTES) {
  const destination = pino.destination({ dest: fd, sync: false, minLength: LOG_BATCH_BYTES, maxLength: maxBufferedBytes, periodicFlush: LOG_FLUSH_MS });
  destination.on("drop", () => logLinesDropped.inc());
  return destination;
}

/**
 * Structured JSON logs on stdout (or the file descriptor `fd`). Child loggers carry `part` and, for pod decisions, `pod: namespace/name`.
 * Lines are buffered up to 4 KiB or LOG_FLUSH_MS and written in one write: the webhook logs every
 * admission, and a write per line cost a fifth of its CPU at 1,000 req/s. Exit flushes what is
 * buffered; a SIGKILL loses at most that. A stdout that takes nothing costs at most
 * LOG_BUFFER_MAX_BYTES of memory, then lines are dropped and counted (peerpods_log_lines_dropped_total).
 */
export function createLogger(level: LevelWithSilent = "info", fd = 1): Logger {
  const logger = pino(
    {
      level,
      base: { app: "peerpods" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: redactCredentials },
    },
    logDestination(fd),
  );
  // pino serialises a child's bindings once, past the log formatter; children inherit this from the root
  const bindChild = logger.child;
  logger.child = function (this: Logger, bindings, options) {
    return bindChild.call(this, redactCredentials(bindings), options);
  } as typeof logger.child;
  return logger;
}

/** A logger that drops everything; for unit tests and library use. */
export const silentLogger: Logger = pino({ level: "silent" });
