import { z } from 'zod'
import { ipAddress, LIMITS } from '../schemas/access-event.js'

/**
 * Microseconds past the millisecond of a parsed instant: answers show
 * occurred_at to the microsecond, and an analyst who copies one into a
 * bound must get exactly that bound, not the millisecond before it.
 */
const SUB_MILLISECOND = new WeakMap<Date, number>()

function parseDateTime(s: string): Date {
  const date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`)
  const fraction = /\.(\d+)/.exec(s)?.[1] ?? ''
  const micros = Number(fraction.slice(3, 6).padEnd(3, '0'))
  if (micros > 0) SUB_MILLISECOND.set(date, micros)
  return date
}

/** Microseconds since the epoch of a parsed instant. */
export function epochMicros(date: Date): number {
  return date.getTime() * 1000 + (SUB_MILLISECOND.get(date) ?? 0)
}

/** A point in time: ISO 8601 text (to the microsecond), a Date, or a date (midnight UTC). */
export const instant = z.union([
  z.iso.datetime({ offset: true, local: true }).transform(parseDateTime),
  z.iso.date().transform((s) => new Date(`${s}T00:00:00Z`)),
  z.date(),
])

export const principalId = z.string().min(1).max(LIMITS.name)
export const databaseName = z.string().min(1).max(LIMITS.name)
export const recordId = z.string().min(1).max(LIMITS.recordId)

/** A list: an array, or comma-separated text as it comes from `--param k=a,b`. */
export function list<T extends z.ZodType>(item: T, max = 1000) {
  return z
    .union([z.array(z.unknown()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x !== ''))])
    .pipe(z.array(item).max(max, `at most ${max} values`))
}

/** Decimal text from the command line becomes a number; anything else is checked as given. */
const numeric = (pattern: RegExp) => (v: unknown) => (typeof v === 'string' && pattern.test(v) ? Number(v) : v)

/** A message for a value of the wrong type only; bounds keep zod's own wording. */
const typeMessage = (message: string) => (issue: { code: string }) => (issue.code === 'invalid_type' ? message : undefined)

/** A whole number: a number, or its decimal text from the command line. */
export function whole(min: number, max: number) {
  return z.preprocess(numeric(/^\d+$/), z.number({ error: typeMessage('must be a whole number') }).int('must be a whole number').min(min).max(max))
}

/** A positive number, possibly fractional. */
export function positive(max: number) {
  return z.preprocess(numeric(/^\d+(\.\d+)?$/), z.number({ error: typeMessage('must be a number') }).positive().max(max))
}

/** Rows to return; 0 = all. One more is fetched to tell the reader the answer was cut. */
export const limit = (fallback: number) => whole(0, 10_000_000).default(fallback)

export const ip = ipAddress
/** A session as stored: the 64-hex HMAC the SDK recorded (shown by who-touched-record). */
export const sessionHash = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be the 64-hex session hash shown in query output').transform((s) => s.toLowerCase())

/**
 * A table as a user writes it: `patients`, `public.patients`,
 * `clinic.patients` or `clinic.public.patients`; matched against what the
 * hooks recorded when the query runs (queries/table-names.ts).
 */
export const tableName = z
  .string()
  .min(1)
  .max(LIMITS.name)
  // Empty text is min(1)'s to report, once.
  .regex(/^$|^[^.\s]+(\.[^.\s]+){0,2}$/, 'must be table, schema.table, database.table or database.schema.table')

/** [from, to) window; an open end means the beginning or the end of time. */
export const window = {
  from: instant.optional(),
  to: instant.optional(),
}

/** A [from, to) window both ends of which are required. */
export const closedWindow = {
  from: instant,
  to: instant,
}

/** Refinement: `to` after `from`, reported against `to`. */
export function fromBeforeTo(p: { from?: Date | undefined; to?: Date | undefined }, ctx: z.RefinementCtx): void {
  if (p.from && p.to && epochMicros(p.to) <= epochMicros(p.from)) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' })
}

const MIN = new Date(0)
const MAX = new Date(Date.UTC(2299, 11, 31))

/** ClickHouse DateTime64(6) parameter text for a bound `{x:DateTime64(6, 'UTC')}`. */
export function toChDateTime(date: Date | undefined, fallback: 'min' | 'max'): string {
  const d = date ?? (fallback === 'min' ? MIN : MAX)
  const micros = SUB_MILLISECOND.get(d) ?? 0
  return `${d.toISOString().replace('T', ' ').replace('Z', '')}${String(micros).padStart(3, '0')}`
}

/** Bound window values `from`, `to`. */
export function bindWindow(p: { from?: Date | undefined; to?: Date | undefined }): { from: string; to: string } {
  return { from: toChDateTime(p.from, 'min'), to: toChDateTime(p.to, 'max') }
}

/** IPv4 clients are stored IPv4-mapped; show them as people write them. */
export const CLIENT_IP_SQL = `if(startsWith(toString(client_ip), '::ffff:') AND position(toString(client_ip), '.') > 0,
              substring(toString(client_ip), 8), toString(client_ip))`

/** The bound window ends, as SQL. */
export const FROM_SQL = `{from:DateTime64(6, 'UTC')}`
export const TO_SQL = `{to:DateTime64(6, 'UTC')}`

/** Window condition on occurred_at. */
export const IN_WINDOW = `occurred_at >= ${FROM_SQL} AND occurred_at < ${TO_SQL}`


/** A query's `limit` (0 = all), applied to one more row so truncation is told (saved-query.ts binds limit_plus_one). */
export const LIMIT_SQL = `LIMIT if({limit_plus_one:UInt64} = 0, 18446744073709551615, {limit_plus_one:UInt64})`

/** Sources of an answer that read access_by_principal rows matching `where`. */
export function eventSources(table: string, where: string): string {
  return `SELECT chain_id, min(seq) AS first_seq, max(seq) AS last_seq, count() AS events FROM ${table} WHERE ${where} GROUP BY chain_id`
}

/**
 * Sources of an answer over every event in the window, from access_log
 * itself: its min/max index on occurred_at reads only the window's granules.
 */
export function windowSources(accessLog: string): string {
  return eventSources(accessLog, IN_WINDOW)
}
