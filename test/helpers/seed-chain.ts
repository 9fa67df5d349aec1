import { emptyChain, linkEntries } from '../../consumers/chain.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from './events.js'

/**
 * Writes `count` chained rows straight into the store, as the chain writer
 * would (offsets 0..count-1), without Kafka. Returns the events in chain order.
 */
export async function seedChain(store: Store, chainId: string, count: number, event: (i: number) => Partial<AccessEvent> = () => ({})): Promise<AccessEvent[]> {
  const events = Array.from({ length: count }, (_, i) => makeEvent(event(i)))
  const linked = linkEntries(
    emptyChain(chainId),
    events.map((e, i) => ({ event: e, offset: BigInt(i), schemaVersion: 1 })),
    Date.UTC(2026, 10, 27, 12) * 1000,
  )
  await store.insertRowBinary('access_log', linked.rows, linked.count)
  return events
}
