import type { ClickHouseSettings } from '@clickhouse/client'

/**
 * Settings for answers that find reads of records through access_log's
 * record key indexes (store/ddl.ts record_keys_bf, record_parts_bf).
 * Measured on 10M events (bench/queries.ts):
 * - The p_principal projection holds every column such an answer selects,
 *   and the planner would read all of it (0.7–1.4 s) rather than the few
 *   granules the indexes leave of access_log (~70 ms): projections carry no
 *   skip indexes.
 * - Once a process has seen an expression three times, ClickHouse compiles
 *   it, and the compiled record_parts_bf expression no longer matches the
 *   index: from the third run on, the subject lookup read every granule
 *   (4.5 s instead of 70 ms).
 */
export const RECORD_LOOKUP_SETTINGS: Readonly<ClickHouseSettings> = Object.freeze({ optimize_use_projections: 0, compile_expressions: 0 })
