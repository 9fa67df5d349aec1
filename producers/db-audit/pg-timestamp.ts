import { DbAuditError } from './errors.js'

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))? (UTC|GMT|[+-]\d{2}(?::?\d{2})?)$/

/**
 * µs since the epoch of a PostgreSQL log timestamp ("2026-12-05 14:04:53.569
 * UTC"). The zone is printed as an abbreviation, and an abbreviation such as
 * CST means three different offsets: only UTC, GMT and numeric offsets are
 * read; any other zone stops the reader with the setting that fixes it, as a
 * guessed time would misplace every entry. Returns undefined for text that
 * is no timestamp at all (a malformed record).
 */
export function parsePgTimestamp(text: string): number | undefined {
  const m = TIMESTAMP.exec(text)
  if (!m) {
    const zone = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})? ([A-Za-z][A-Za-z0-9+-]{0,9})$/.exec(text)?.[1]
    if (zone !== undefined) throw unsupportedZone(zone)
    return undefined
  }
  const [, y, mo, d, h, mi, s, frac, zone] = m
  const fraction = Number((frac ?? '').padEnd(6, '0'))
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))
  if (!Number.isFinite(ms)) return undefined
  return (ms - zoneOffsetMinutes(zone!) * 60_000) * 1000 + fraction
}

function zoneOffsetMinutes(zone: string): number {
  if (zone === 'UTC' || zone === 'GMT') return 0
  const sign = zone[0] === '-' ? -1 : 1
  const digits = zone.slice(1).replace(':', '')
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'))
}

function unsupportedZone(zone: string): DbAuditError {
  return new DbAuditError('DB_AUDIT_LOG_UNSUPPORTED', `the PostgreSQL log stamps entries in time zone ${zone}, an abbreviation that names no single offset: set log_timezone = 'UTC' and reload the server`, {
    details: { zone, setting: "log_timezone = 'UTC'" },
  })
}
