import type { Store } from './store.js'

/** The query view: one row per access_log row, keyed by chain and seq. */
const VIEW = 'access_by_principal'

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

/** Deletes the view rows of `range`: what the view holds there is replaced (or removed) with access_log. */
export async function deleteViewRows(store: Store, range: SeqRange): Promise<void> {
  const { where, params } = seqWhere(range)
  await mutate(store, `ALTER TABLE ${store.table(VIEW)} DELETE WHERE ${where}`, params)
}
