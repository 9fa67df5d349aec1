import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino'

export type { Logger }

/**
 * Paths redacted in every readtrail log line. The audit log must never become
 * the next leak: record ids, raw session ids, SQL text and credentials stay out.
 */
export const REDACT_PATHS = [
  'record_ids',
  '*.record_ids',
  'recordIds',
  '*.recordIds',
  'sessionId',
  '*.sessionId',
  'query',
  '*.query',
  'password',
  '*.password',
  'sessionHashKey',
  '*.sessionHashKey',
]

export function createLogger(options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const merged = {
    level: process.env['READTRAIL_LOG_LEVEL'] ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...options,
  }
  return destination ? pino(merged, destination) : pino(merged)
}
