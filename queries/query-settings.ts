import type { ClickHouseSettings } from '@clickhouse/client'

/**
 * Settings every saved query and its re-check run with. Once a process has
 * seen an expression three times, ClickHouse compiles it, and the compiled
 * expression no longer matches a projection or a skip index built on it: in
 * one process (the owner serving queries over its socket, bench/queries.ts)
 * answers fell from projections and indexes to full scans after a few runs
 * (first-time-access 0.2 s to 1.3 s, a subject lookup 70 ms to 4.5 s, on
 * 10M events). The answers never changed, only their cost.
 */
export const SAVED_QUERY_SETTINGS: Readonly<ClickHouseSettings> = Object.freeze({ compile_expressions: 0 })

/**
 * For answers that find reads of records through access_log's record key
 * indexes (store/ddl.ts record_keys_bf, record_parts_bf): the p_principal
 * projection holds every column such an answer selects, and the planner
 * would read all of it (0.7–1.4 s) rather than the few granules the indexes
 * leave of access_log (~70 ms): projections carry no skip indexes.
 */
export const RECORD_LOOKUP_SETTINGS: Readonly<ClickHouseSettings> = Object.freeze({ optimize_use_projections: 0 })
