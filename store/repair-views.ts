import { PRINCIPAL_DAYS_COLUMNS, PRINCIPAL_HOURS_COLUMNS, PRINCIPAL_VIEW_COLUMNS, RECORD_VIEW_COLUMNS, principalDaysSelect, principalHoursSelect, viewSelect } from './ddl.js'
import type { Store } from './store.js'

interface DerivedTable {
  table: string
  /** Highest chain seq the table already covers. */
  maxSeq: string
  columns: readonly string[]
  /** SELECT of the table's rows from `source` (access_log rows of one chain tail). */
  select: (source: string) => string
}

const VIEWS: readonly DerivedTable[] = [
  { table: 'access_by_principal', maxSeq: 'max(seq)', columns: PRINCIPAL_VIEW_COLUMNS, select: (source) => `SELECT ${viewSelect(PRINCIPAL_VIEW_COLUMNS)} FROM (${source})` },
  { table: 'record_access', maxSeq: 'max(seq)', columns: RECORD_VIEW_COLUMNS, select: (source) => `SELECT ${viewSelect(RECORD_VIEW_COLUMNS)} FROM (${source})` },
  // The rollup keeps each chain's highest seq per hour, so its tail is found the same way.
  { table: 'principal_hours', maxSeq: 'max(last_seq)', columns: PRINCIPAL_HOURS_COLUMNS.map((c) => c.name), select: (source) => principalHoursSelect(`(${source})`, '') },
  { table: 'principal_days', maxSeq: 'max(last_seq)', columns: PRINCIPAL_DAYS_COLUMNS.map((c) => c.name), select: (source) => principalDaysSelect(`(${source})`, '') },
]

/**
 * Completes the query views for the newest rows of a chain. ClickHouse
 * pushes an insert into access_log and then into each view one after the
 * other, not atomically: a writer killed in between leaves rows in the chain
 * that a view lacks, and the restarted writer skips those events as already
 * stored. Each view is filled in block by block in seq order, so whatever it
 * lacks is exactly the rows after its highest seq for the chain. Returns the
 * view rows added (0 after a clean stop). Called by the chain writer when it
 * reads a chain's head, before it appends anything.
 */
export async function repairViewTail(store: Store, chainId: string): Promise<number> {
  let added = 0
  for (const view of VIEWS) {
    const [have] = await store.queryRows<{ view_max: number; log_max: number }>(
      `SELECT (SELECT ${view.maxSeq} FROM ${store.table(view.table)} WHERE chain_id = {chain_id:String}) AS view_max,
              (SELECT max(seq) FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String}) AS log_max`,
      { chain_id: chainId },
    )
    const viewMax = Number(have?.view_max ?? 0)
    if (!have || Number(have.log_max) <= viewMax) continue
    const source = `SELECT * FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq > {after:UInt64}`
    const [count] = await store.queryRows<{ n: number }>(
      `SELECT count() AS n FROM (${view.select(source)})`,
      { chain_id: chainId, after: viewMax },
    )
    if (Number(count?.n ?? 0) === 0) continue
    await store.client.command({
      query: `INSERT INTO ${store.table(view.table)} (${view.columns.join(', ')}) ${view.select(source)}`,
      query_params: { chain_id: chainId, after: viewMax },
    })
    added += Number(count!.n)
  }
  return added
}
