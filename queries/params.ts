import { z } from 'zod'
import { LIMITS } from '../schemas/access-event.js'

/** A point in time: ISO 8601 text, a Date, or microseconds since the epoch. */
export const instant = z.union([
  z.iso.datetime({ offset: true, local: true }).transform((s) => new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`)),
  z.iso.date().transform((s) => new Date(`${s}T00:00:00Z`)),
  z.date(),
])

export const principalId = z.string().min(1).max(LIMITS.name)
export const tableName = z.string().min(1).max(LIMITS.name)
export const recordId = z.string().min(1).max(LIMITS.recordId)

/** [from, to) window; an open end means the beginning or the end of time. */
export const window = {
  from: instant.optional(),
  to: instant.optional(),
}

/** ClickHouse DateTime64(6) parameter text for a bound `{x:DateTime64(6, 'UTC')}`. */
export function toChDateTime(date: Date | undefined, fallback: 'min' | 'max'): string {
  const d = date ?? (fallback === 'min' ? new Date(0) : new Date(Date.UTC(2299, 11, 31)))
  return d.toISOString().replace('T', ' ').replace('Z', '')
}
