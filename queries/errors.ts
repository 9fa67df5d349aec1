import { ReadtrailError } from '../common/errors.js'

/** Unknown saved query or a parameter that failed validation (nothing was sent to ClickHouse). */
export class QueryError extends ReadtrailError {}
