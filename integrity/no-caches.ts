import type { ClickHouseSettings } from '@clickhouse/client'

/**
 * The verifier recomputes everything on every run. ClickHouse's query
 * condition cache remembers granules where a filter was false and skips them
 * next time: an attacker who edits data in place would inherit a clean
 * verdict. Every query verification sends carries these settings.
 */
export const NO_CACHES: ClickHouseSettings = Object.freeze({ use_query_condition_cache: 0, use_query_cache: 0 })
