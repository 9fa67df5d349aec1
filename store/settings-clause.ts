import type { ClickHouseSettings } from '@clickhouse/client'

/**
 * The embedded engine's connection (chdb/connection) applies a request's
 * clickhouse_settings as `SET k = v; <query>` on its one session, so they
 * stay set for every later query of the process: a lookup that turned off
 * projections left every later answer without them (first-time-access
 * 0.2 s to 1.3 s on 10M events). A SETTINGS clause holds for its own query
 * only, and for every branch of a UNION. Values are numbers, booleans or
 * strings, names are checked: both go into SQL text.
 */
export function withSettingsClause(query: string, settings: ClickHouseSettings): string {
  const entries = Object.entries(settings).filter(([, v]) => v !== undefined)
  if (entries.length === 0) return query
  const clause = entries.map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new TypeError(`invalid setting name ${JSON.stringify(k)}`)
    if (typeof v === 'number' && Number.isFinite(v)) return `${k} = ${v}`
    if (typeof v === 'boolean') return `${k} = ${v ? 1 : 0}`
    return `${k} = '${String(v).replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`
  })
  // On its own line: a query ending in a -- comment keeps the clause.
  return `${query}\nSETTINGS ${clause.join(', ')}`
}
