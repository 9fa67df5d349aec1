import { PRINCIPAL_DAYS_COLUMNS, PRINCIPAL_HOURS_COLUMNS, principalDaysSelect, principalHoursSelect } from './ddl.js'
import type { Store } from './store.js'

/** The per-event query views: one row (or one per record id) per access_log row, keyed by chain and seq. */
const EVENT_VIEWS = ['access_by_principal', 'record_access'] as const

/** Rollup keys of some access_log rows: the rollup rows that aggregate them. */
export interface RollupKeys {
  principals: string[]
  hours: string[]
  days: string[]
}

const HOUR_SQL = PRINCIPAL_HOURS_COLUMNS.find((c) => c.name === 'hour')!.expr
const DAY_SQL = PRINCIPAL_DAYS_COLUMNS.find((c) => c.name === 'day')!.expr

/** An ALTER … UPDATE/DELETE with bound parameters, waited for on every replica. */
export function mutate(store: Store, query: string, params: Record<string, unknown>): Promise<unknown> {
  // Synchronous: the next step (an insert, a rebuild from access_log) must see the mutation done.
  return store.client.command({ query, query_params: params, clickhouse_settings: { mutations_sync: '2' } })
}

/** Seqs from..to of a chain (`to` null: every seq from `from` on). */
export interface SeqRange {
  chainId: string
  from: number
  to: number | null
}

function seqWhere(range: SeqRange): { where: string; params: Record<string, unknown> } {
  return {
    where: `chain_id = {chain_id:String} AND seq >= {from_seq:UInt64}${range.to === null ? '' : ' AND seq <= {to_seq:UInt64}'}`,
    params: { chain_id: range.chainId, from_seq: range.from, ...(range.to === null ? {} : { to_seq: range.to }) },
  }
}

/** The rollup keys the access_log rows in `range` fall under (read them before those rows are deleted, or after they are inserted). */
export async function readRollupKeys(store: Store, range: SeqRange): Promise<RollupKeys> {
  const { where, params } = seqWhere(range)
  const [row] = await store.queryRows<RollupKeys>(
    `SELECT groupUniqArray(principal_id) AS principals, groupUniqArray(toString(${HOUR_SQL})) AS hours, groupUniqArray(toString(${DAY_SQL})) AS days
     FROM ${store.table('access_log')} WHERE ${where}`,
    params,
  )
  return row ?? { principals: [], hours: [], days: [] }
}

/** Deletes the per-event view rows of `range`: what the views hold there is replaced (or removed) with access_log. */
export async function deleteViewRows(store: Store, range: SeqRange): Promise<void> {
  const { where, params } = seqWhere(range)
  for (const view of EVENT_VIEWS) await mutate(store, `ALTER TABLE ${store.table(view)} DELETE WHERE ${where}`, params)
}

/**
 * Rebuilds the rollup rows of `keys` in one chain from access_log as it is
 * now. Rollups are partial aggregates: rows added or removed under a key
 * cannot be patched in, so every rollup row the key selection matches is
 * deleted and the same selection is aggregated again from access_log. The
 * selection (chain, principals × hours or days) may cover more keys than
 * changed; those are rebuilt to what they held.
 */
export async function rebuildRollups(store: Store, chainId: string, keys: RollupKeys): Promise<void> {
  if (keys.principals.length === 0) return
  const params = { chain_id: chainId, principals: keys.principals, hours: keys.hours, days: keys.days }
  const log = store.table('access_log')
  const rollups = [
    { table: 'principal_hours', columns: PRINCIPAL_HOURS_COLUMNS, key: 'toString(hour) IN {hours:Array(String)}', source: `toString(${HOUR_SQL}) IN {hours:Array(String)}`, select: principalHoursSelect },
    { table: 'principal_days', columns: PRINCIPAL_DAYS_COLUMNS, key: 'toString(day) IN {days:Array(String)}', source: `toString(${DAY_SQL}) IN {days:Array(String)}`, select: principalDaysSelect },
  ]
  for (const r of rollups) {
    await mutate(store, `ALTER TABLE ${store.table(r.table)} DELETE WHERE chain_id = {chain_id:String} AND principal_id IN {principals:Array(String)} AND ${r.key}`, params)
    await store.client.command({
      query: `INSERT INTO ${store.table(r.table)} (${r.columns.map((c) => c.name).join(', ')})
              ${r.select(log, `WHERE chain_id = {chain_id:String} AND principal_id IN {principals:Array(String)} AND ${r.source}`)}`,
      query_params: params,
    })
  }
}
