import { createRandom } from '../../demo/applicants.js'
import type { ReadInput } from '../../schemas/read-input.js'

export interface PlannedRead {
  input: ReadInput
}

export interface Truth {
  /** principal → `${table}/${record}` → { count, columns, first, last } (times in µs) */
  byPrincipal: Map<string, Map<string, { count: number; columns: Set<string>; first: number; last: number }>>
  /** `${table}/${record}` → every (principal, occurred_at µs) that read it */
  byRecord: Map<string, { principal: string; at: number }[]>
}

const TABLES = {
  applicants: ['id', 'full_name', 'birth_date', 'phone', 'address', 'nationality'],
  patients: ['id', 'full_name', 'phone', 'religion', 'sexual_orientation'],
} as const

/**
 * A deterministic mix of reads by several principals over two sensitive
 * tables, with records read repeatedly and by several principals, and the
 * ground truth the saved queries must reproduce, computed independently.
 */
export function planWorkload(opts: { reads: number; principals: string[]; seed?: number; startMicros?: number }): { reads: ReadInput[]; truth: Truth } {
  const rnd = createRandom(opts.seed ?? 42)
  const start = opts.startMicros ?? Date.UTC(2026, 10, 20) * 1000
  const reads: ReadInput[] = []
  const truth: Truth = { byPrincipal: new Map(), byRecord: new Map() }
  for (let i = 0; i < opts.reads; i++) {
    const principal = opts.principals[i % opts.principals.length]!
    const table = rnd() < 0.6 ? 'applicants' : 'patients'
    const allColumns = TABLES[table]
    const columns = allColumns.filter((c, j) => j === 0 || rnd() < 0.5)
    const n = 1 + Math.floor(rnd() * 12)
    const ids = new Set<string>()
    while (ids.size < n) ids.add(String(1000 + Math.floor(rnd() * 3000)))
    const at = start + i * 1_000_000 + Math.floor(rnd() * 1000)
    reads.push({
      principal: { id: principal, type: principal.startsWith('svc.') ? 'service' : 'user' },
      clientIp: `10.0.${i % 7}.${1 + (i % 200)}`,
      resource: { database: 'registry', table },
      columns: [...columns],
      recordIds: [...ids],
      query: `SELECT ${columns.join(', ')} FROM ${table} WHERE id IN (${[...ids].join(', ')})`,
      occurredAt: at,
    })
    const perPrincipal = truth.byPrincipal.get(principal) ?? new Map()
    truth.byPrincipal.set(principal, perPrincipal)
    for (const id of ids) {
      const key = `${table}/${id}`
      const t = perPrincipal.get(key) ?? { count: 0, columns: new Set<string>(), first: at, last: at }
      t.count += 1
      columns.forEach((c) => t.columns.add(c))
      t.first = Math.min(t.first, at)
      t.last = Math.max(t.last, at)
      perPrincipal.set(key, t)
      const who = truth.byRecord.get(key) ?? []
      who.push({ principal, at })
      truth.byRecord.set(key, who)
    }
  }
  return { reads, truth }
}

/** ClickHouse's ISO output of a DateTime64(6) as microseconds. */
export function isoToMicros(iso: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/.exec(iso)
  if (!m) throw new Error(`not an ISO UTC timestamp: ${iso}`)
  return Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] ?? '').padEnd(6, '0'))
}
