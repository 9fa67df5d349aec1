import { PRINCIPAL_VIEW_COLUMNS } from './ddl.js'
import type { Store } from './store.js'

/** The query view the writer's inserts feed (store/ddl.ts). */
const VIEW = 'access_by_principal'

/**
 * Completes the query view for the newest rows of a chain. ClickHouse
 * pushes an insert into access_log and then into the view one after the
 * other, not atomically: a writer killed in between leaves rows in the chain
 * that the view lacks, and the restarted writer skips those events as
 * already stored. The view is filled in block by block in seq order, so
 * whatever it lacks is exactly the rows after its highest seq for the chain.
 * Returns the view rows added (0 after a clean stop). Called by the chain
 * writer when it reads a chain's head, before it appends anything.
 */
export async function repairViewTail(store: Store, chainId: string): Promise<number> {
  const [have] = await store.queryRows<{ view_max: number; log_max: number }>(
    `SELECT (SELECT max(seq) FROM ${store.table(VIEW)} WHERE chain_id = {chain_id:String}) AS view_max,
            (SELECT max(seq) FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String}) AS log_max`,
    { chain_id: chainId },
  )
  const viewMax = Number(have?.view_max ?? 0)
  if (!have || Number(have.log_max) <= viewMax) return 0
  const columns = PRINCIPAL_VIEW_COLUMNS.join(', ')
  const tail = `SELECT ${columns} FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq > {after:UInt64}`
  const params = { chain_id: chainId, after: viewMax }
  const [count] = await store.queryRows<{ n: number }>(`SELECT count() AS n FROM (${tail})`, params)
  const added = Number(count?.n ?? 0)
  if (added === 0) return 0
  await store.client.command({ query: `INSERT INTO ${store.table(VIEW)} (${columns}) ${tail}`, query_params: params })
  return added
}
