import type { Store } from '../store/store.js'
import { NO_CACHES } from './no-caches.js'
import { producersSinceSql } from './owner-read-sql.js'
import type { FactsRequest } from './facts.js'
import { findProducerBreaks } from './producer-gaps.js'
import type { ProducerBreak } from './row-facts.js'

export interface ProducerFacts {
  breaks: ProducerBreak[]
  truncated: boolean
  checked: number
  through: Record<string, number>
}

/**
 * Incremental runs: only the producers seen in the new rows, and only their
 * events beyond what an earlier run saw complete. ClickHouse filters and
 * sorts; the holes are found here.
 */
export async function producerBreaksSince(store: Store, request: FactsRequest, producerIds: readonly string[]): Promise<ProducerFacts> {
  const through = new Map(Object.entries(request.producer_through ?? {}))
  const ids = [...producerIds].sort()
  if (ids.length === 0) return { breaks: [], truncated: false, checked: 0, through: {} }
  const lowest = Math.min(...ids.map((p) => through.get(p) ?? 0))
  const rows = await store.queryRows<{ producer_id: string; producer_seq: number; chain_id: string; seq: number; ingested_at_us: number }>(
    producersSinceSql(store.table('access_log')),
    { ids, lowest },
    NO_CACHES,
  )
  const found = findProducerBreaks(
    rows.map((r) => ({ producer_id: r.producer_id, chain_id: r.chain_id, producer_seq: Number(r.producer_seq), seq: Number(r.seq), ingested_at_us: Number(r.ingested_at_us) })),
    through,
  )
  return {
    breaks: found.breaks.slice(0, request.maxSuspects),
    truncated: found.breaks.length > request.maxSuspects,
    checked: ids.length,
    through: Object.fromEntries(found.through),
  }
}
