import { PRINCIPAL_VIEW_COLUMNS, RECORD_VIEW_COLUMNS, viewSelect } from './ddl.js'
import type { Store } from './store.js'

const VIEWS = [
  { table: 'access_by_principal', columns: PRINCIPAL_VIEW_COLUMNS },
  { table: 'record_access', columns: RECORD_VIEW_COLUMNS },
] as const

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
      `SELECT (SELECT max(seq) FROM ${store.table(view.table)} WHERE chain_id = {chain_id:String}) AS view_max,
              (SELECT max(seq) FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String}) AS log_max`,
      { chain_id: chainId },
    )
    const viewMax = Number(have?.view_max ?? 0)
    if (!have || Number(have.log_max) <= viewMax) continue
    const source = `SELECT * FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq > {after:UInt64}`
    const [count] = await store.queryRows<{ n: number }>(
      `SELECT count() AS n FROM (SELECT ${viewSelect(view.columns)} FROM (${source}))`,
      { chain_id: chainId, after: viewMax },
    )
    if (Number(count?.n ?? 0) === 0) continue
    await store.client.command({
      query: `INSERT INTO ${store.table(view.table)} (${view.columns.join(', ')}) SELECT ${viewSelect(view.columns)} FROM (${source})`,
      query_params: { chain_id: chainId, after: viewMax },
    })
    added += Number(count!.n)
  }
  return added
}
