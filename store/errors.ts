import { ReadtrailError, type ReadtrailErrorOptions } from '../common/errors.js'

/** ClickHouse failures. Network and lock failures are retriable; schema ones are not. */
export class StoreError extends ReadtrailError {}

export function storeUnavailable(what: string, cause: unknown, options: ReadtrailErrorOptions = {}): StoreError {
  const type = (cause as { type?: string } | undefined)?.type
  return new StoreError('STORE_UNAVAILABLE', `${what}: ${(cause as Error)?.message ?? String(cause)}`, {
    retriable: true,
    ...options,
    cause,
    details: { ...(type ? { clickhouse_error_type: type } : {}), ...options.details },
  })
}
