/**
 * The rows the reports read from saved-query answers, checked at the
 * boundary: answers arrive as `Record<string, unknown>` (possibly from the
 * owner process over a socket), and a report that drew `undefined` as 0 would
 * understate a breach. A row of the wrong shape stops the report instead.
 */
import { z } from 'zod'
import type { QueryAnswer } from '../queries/saved-query.js'

// ClickHouse sends UInt64 as text unless told otherwise; accept both, keep exact integers.
const count = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/).transform(Number)])
const time = z.string().min(1)
const names = z.array(z.string())

export const TimelineRow = z.object({ bucket_start: time, database: z.string(), table: z.string(), reads: count, rows_read: count })
export type TimelineRow = z.output<typeof TimelineRow>

export const BreachScopeRow = z.object({
  database: z.string(),
  table: z.string(),
  distinct_records: count,
  distinct_subjects: count.nullable(),
  columns: names,
  reads: count,
  rows_read: count,
  principals: names,
  first_access: time,
  last_access: time,
})
export type BreachScopeRow = z.output<typeof BreachScopeRow>

export const BreachRecordRow = z.object({
  database: z.string(),
  table: z.string(),
  record_id: z.string(),
  subject_id: z.string().nullable(),
  columns: names,
  reads: count,
  principals: names,
  first_access: time,
  last_access: time,
})
export type BreachRecordRow = z.output<typeof BreachRecordRow>

export const PrincipalRecordRow = z.object({
  database: z.string(),
  table: z.string(),
  record_id: z.string(),
  columns: names,
  first_access: time,
  last_access: time,
  access_count: count,
})
export type PrincipalRecordRow = z.output<typeof PrincipalRecordRow>

export const OffHoursRow = z.object({
  principal_id: z.string(),
  database: z.string(),
  table: z.string(),
  reads: count,
  rows_read: count,
  first_access: time,
  last_access: time,
})
export type OffHoursRow = z.output<typeof OffHoursRow>

/** The answer with its rows parsed; names the query and the first bad row on mismatch. */
export function parseAnswer<S extends z.ZodType>(answer: QueryAnswer<Record<string, unknown>>, schema: S): QueryAnswer<z.output<S>> {
  const rows = answer.rows.map((row, i) => {
    const parsed = schema.safeParse(row)
    if (parsed.success) return parsed.data as z.output<S>
    // A saved query and its report disagreeing is a bug in readtrail, not a user error: no code, keep the stack.
    throw new TypeError(`${answer.query} answered a row the report cannot read (row ${i}): ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`)
  })
  return { ...answer, rows }
}
