import { ReadtrailError, type ReadtrailErrorOptions } from '../common/errors.js'

/** ClickHouse failures: STORE_UNAVAILABLE (retriable), STORE_REJECTED for the data or SQL sent (not). */
export class StoreError extends ReadtrailError {}

/**
 * ClickHouse error types that depend on the data sent, not on the server's
 * state: the same request will fail again, so retrying it blocks forever.
 */
const DATA_ERROR_TYPE = /^(CANNOT_PARSE|INCORRECT_DATA|CANNOT_READ_ALL_DATA|ATTEMPT_TO_READ_AFTER_EOF|TYPE_MISMATCH|CANNOT_CONVERT_TYPE|VALUE_IS_OUT_OF_RANGE|ARGUMENT_OUT_OF_BOUND|TOO_LARGE_STRING_SIZE|CANNOT_INSERT_NULL|UNKNOWN_ELEMENT_IN_ENUM|VIOLATED_CONSTRAINT|BAD_ARGUMENTS|ILLEGAL_)/

export function isDataError(err: unknown): boolean {
  const type = err instanceof StoreError ? err.details?.['clickhouse_error_type'] : (err as { type?: unknown } | undefined)?.type
  return typeof type === 'string' && DATA_ERROR_TYPE.test(type)
}

export function storeUnavailable(what: string, cause: unknown, options: ReadtrailErrorOptions = {}): StoreError {
  const type = (cause as { type?: string } | undefined)?.type
  return new StoreError(isDataError(cause) ? 'STORE_REJECTED' : 'STORE_UNAVAILABLE', `${what}: ${(cause as Error)?.message ?? String(cause)}`, {
    ...options,
    cause,
    details: { ...(type ? { clickhouse_error_type: type } : {}), ...options.details },
  })
}
