import type { Store } from '../store/store.js'
import { emptyChain, type ChainHead } from './chain.js'

interface HeadRow {
  seq: number
  hash: string
  kafka_offset: string
}

/**
 * Reads a chain's newest row back from ClickHouse, the source of truth. The
 * writer calls this on start and after every rebalance, so a batch redelivered
 * after a crash is recognised by its offsets and never stored twice.
 */
export async function readChainHead(store: Store, chainId: string): Promise<ChainHead> {
  const rows = await store.queryRows<HeadRow>(
    `SELECT seq, hex(hash) AS hash, toString(kafka_offset) AS kafka_offset
     FROM ${store.table('access_log')}
     WHERE chain_id = {chain_id:String}
     ORDER BY seq DESC
     LIMIT 1`,
    { chain_id: chainId },
  )
  const head = rows[0]
  if (!head) return emptyChain(chainId)
  return { chainId, seq: Number(head.seq), hash: Buffer.from(head.hash, 'hex'), lastOffset: BigInt(head.kafka_offset) }
}
