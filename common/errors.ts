import { RETRIABLE_CODES, type ErrorCode } from './error-codes.js'

export interface ReadtrailErrorOptions {
  cause?: unknown
  /** Structured details (field names, limits) for logs and JSON output; never personal data. */
  details?: Record<string, unknown>
}

/** Base of every error readtrail raises on purpose. */
export class ReadtrailError extends Error {
  readonly code: ErrorCode
  /** Whether trying the same operation again may succeed (common/error-codes.ts RETRIABLE_CODES); retry loops read only this flag. */
  readonly retriable: boolean
  readonly details: Record<string, unknown> | undefined

  constructor(code: ErrorCode, message: string, options: ReadtrailErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retriable = RETRIABLE_CODES.has(code)
    this.details = options.details
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, retriable: this.retriable, details: this.details }
  }
}

/** Configuration rejected at start-up; every issue is in `details.issues`. */
export class ConfigError extends ReadtrailError {
  constructor(message: string, options: ReadtrailErrorOptions = {}) {
    super('CONFIG_INVALID', message, options)
  }
}

export function isReadtrailError(err: unknown): err is ReadtrailError {
  return err instanceof ReadtrailError
}

/** Human text for an unknown thrown value, for logs and the CLI. */
export function describeError(err: unknown): string {
  if (err instanceof ReadtrailError) return `${err.code}: ${err.message}`
  if (err instanceof Error) return err.message
  return String(err)
}
