import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bindWindow, closedWindow, databaseName, fromBeforeTo, IN_WINDOW, limit, LIMIT_SQL, list, principalId, tableName, windowSources } from './params.js'
import { TABLE_FILTER } from './table-names.js'

export interface OffHoursRow {
  principal_id: string
  database: string
  table: string
  reads: number
  rows_read: number
  first_access: string
  last_access: string
}

// Any zone ICU resolves, current names (Asia/Kolkata, Europe/Kyiv) and
// their aliases alike; Intl.supportedValuesOf lists only one of each.
function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return /^[A-Za-z0-9_+\-/]+$/.test(tz)
  } catch {
    return false
  }
}
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const

/** `HH:MM` → minutes after midnight. */
const clock = z
  .string()
  .regex(/^([01]\d|2[0-4]):[0-5]\d$/, 'must be HH:MM (24-hour)')
  .transform((s) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3)))
  .pipe(z.number().max(24 * 60, 'must be at most 24:00'))

const Params = z
  .object({
    ...closedWindow,
    timezone: z.string().refine(isTimeZone, 'must be an IANA time zone, e.g. Europe/Berlin').default('Europe/Berlin'),
    workday_start: clock.default(8 * 60),
    workday_end: clock.default(18 * 60),
    weekdays: list(z.enum(WEEKDAYS), 7).default(['mon', 'tue', 'wed', 'thu', 'fri']),
    principal: principalId.optional(),
    database: databaseName.optional(),
    table: tableName.optional(),
    limit: limit(1000),
  })
  .strict()
  .superRefine((p, ctx) => {
    fromBeforeTo(p, ctx)
    if (p.workday_end <= p.workday_start) ctx.addIssue({ code: 'custom', path: ['workday_end'], message: 'must be after workday_start' })
  })

// Local wall-clock time in the bound zone, so DST changes move the hours
// with the office, not with UTC.
const LOCAL_MINUTE = `(toHour(occurred_at, {timezone:String}) * 60 + toMinute(occurred_at, {timezone:String}))`
const LOCAL_WEEKDAY = `toDayOfWeek(occurred_at, 0, {timezone:String})`

export const offHoursAccess = defineQuery<typeof Params, OffHoursRow>({
  name: 'off-hours-access',
  description: 'Reads outside working hours in a given time zone: per principal and table, how many, how many rows, first and last.',
  params: Params,
  paramHelp: {
    from: 'window start (ISO 8601, inclusive; required)',
    to: 'window end (exclusive; required)',
    timezone: 'IANA time zone of the office (default Europe/Berlin)',
    workday_start: 'start of working hours, HH:MM local (default 08:00)',
    workday_end: 'end of working hours, HH:MM local, exclusive (default 18:00)',
    weekdays: 'working days, comma-separated mon..sun (default mon,tue,wed,thu,fri)',
    principal: 'only this principal',
    database: 'only this database',
    table: 'only this table: patients, public.patients or db.public.patients',
    limit: 'rows to return, most rows read first (default 1000, 0 = all)',
  },
  tables: { table: 'table', database: 'database' },
  columns: ['principal_id', 'database', 'table', 'reads', 'rows_read', 'first_access', 'last_access'],
  sql: (store) => `
    SELECT principal_id, db_name AS database, table_name AS table, countIf(part_index = 0) AS reads, sumIf(row_count, part_index = 0) AS rows_read,
           min(occurred_at) AS first_access, max(occurred_at) AS last_access
    FROM ${store.table('access_log')}
    WHERE ${IN_WINDOW}
      AND ({principal:String} = '' OR principal_id = {principal:String})
      AND ${TABLE_FILTER}
      AND NOT (has({workdays:Array(UInt8)}, ${LOCAL_WEEKDAY})
               AND ${LOCAL_MINUTE} >= {workday_start:UInt16} AND ${LOCAL_MINUTE} < {workday_end:UInt16})
    GROUP BY principal_id, db_name, table_name
    ORDER BY rows_read DESC, principal_id, database, table
    ${LIMIT_SQL}`,
  sourcesSql: (store) => windowSources(store.table('access_log')),
  // access_log alone: nothing derived to re-check.
  checks: () => [],
  bind: (p) => ({
    ...bindWindow(p),
    timezone: p.timezone,
    workday_start: p.workday_start,
    workday_end: p.workday_end,
    workdays: p.weekdays.map((d) => WEEKDAYS.indexOf(d) + 1),
    principal: p.principal ?? '',
  }),
})
