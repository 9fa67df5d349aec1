import type { AuditPolicy } from './hook-config.js'

/**
 * What a driver hook saw of one sensitive table in one query result: the
 * driver-neutral input of the read recorder.
 */
export interface TableRead {
  /** Qualified name as configured (`public.people`, `app.people`). */
  table: string
  /**
   * The database the table lives in, when the driver says so per table
   * (MySQL: a query may join tables of several databases); else the one the
   * hook passes for the whole result.
   */
  database?: string
  policy: AuditPolicy
  /** Sensitive columns of this table present in the result, by their real (not aliased) names. */
  columns: string[]
  /** Primary key of every returned row of this table, each once, in first-seen order. */
  recordIds: string[]
  /** Rows of the result that carry this table's data (repeats included). */
  rowCount: number
  /** False when the result lacked (part of) the primary key, so recordIds cannot name every row. */
  recordIdsComplete: boolean
}
