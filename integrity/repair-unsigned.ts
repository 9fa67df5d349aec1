import type { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { isReadtrailError } from '../common/errors.js'
import { nowMicros } from '../common/time.js'
import { emptyChain, linkEntries, type ChainEntry, type ChainHead } from '../consumers/chain.js'
import { readRowsAfter } from '../consumers/chain-resume.js'
import { readMessagesAt } from '../consumers/repair-messages.js'
import { readWatermarks } from './kafka-log-facts.js'
import { readRowsBetween } from '../store/repair-breaks.js'
import { deleteViewRows } from '../store/repair-derived.js'
import { quarantineChainTail } from '../store/repair-quarantine.js'
import { partitionOf, type RepairTarget } from './repair-signed.js'
import type { RepairItem } from './repair-report.js'

/** The first stored row after the signed head that Kafka does not vouch for, and why; null when Kafka vouches for every one. */
export async function findUnvouchedRow(t: RepairTarget, head: ChainHead, partition: number): Promise<{ seq: number; reason: string } | null> {
  const partitionEnd = async () => (await readWatermarks(t.kafka, t.topic, t.bounds.timeoutMs))?.find((m) => m.partition === partition)?.high ?? 0n
  let shapeBad: { seq: number; reason: string } | null = null
  let rows: { seq: number; hash: Buffer; offset: bigint; index?: number; ingestedAt: number }[]
  try {
    // The writer's own checks of the rows' shape: seqs, offsets, the partition's end, stored hashes.
    rows = await readRowsAfter(t.store, head, partitionEnd)
  } catch (err) {
    const seq = isReadtrailError(err) && err.code === 'CHAIN_UNTRUSTED' ? err.details?.['seq'] : undefined
    if (typeof seq !== 'number') throw err
    shapeBad = { seq, reason: err instanceof Error ? err.message : String(err) }
    rows = await readRowsBetween(t.store, head.chainId, head.seq, seq)
  }
  // Then, as the writer does on resume, each row must be derived byte for byte from the message at its offset.
  const messages = await readMessagesAt(t.kafka, t.topic, partition, rows.map((r) => r.offset), t.bounds)
  let derived = head
  // Each message decoded once for all of its rows (a batch holds many).
  const decoded = new Map<bigint, ChainEntry[]>()
  for (const row of rows) {
    const message = messages.get(row.offset)
    const at = `chain ${head.chainId} seq ${row.seq}`
    if (!message) return { seq: row.seq, reason: `${at}: Kafka holds no message at its offset ${row.offset}` }
    let linked
    try {
      let entries = decoded.get(row.offset)
      if (!entries) {
        entries = t.decoder.decode(t.topic, message, row.offset)
        decoded.set(row.offset, entries)
      }
      const entry = entries[row.index ?? 0]
      if (!entry) throw new Error(`the message holds ${entries.length} events, the row claims event ${(row.index ?? 0) + 1}`)
      linked = linkEntries(derived, [entry], row.ingestedAt)
    } catch (err) {
      return { seq: row.seq, reason: `${at}: the message at offset ${row.offset} it claims to store is not an event (${(err as Error).message.slice(0, 200)})` }
    }
    if (!linked.head.hash.equals(row.hash)) return { seq: row.seq, reason: `${at}: the stored row differs from the message at offset ${row.offset} it claims to store` }
    derived = linked.head
  }
  return shapeBad
}

/**
 * Quarantines the unsigned rows of a chain that Kafka does not vouch for:
 * from the first such row after the newest signed checkpoint on (the rows
 * after it link onto it, so they must be re-derived too), copied into
 * quarantined_rows and then removed from access_log and the query tables,
 * so the next `consume` re-derives the tail from Kafka. The rows before it
 * are kept: Kafka vouches for them.
 */
export async function quarantineUnsignedRows(t: RepairTarget, chainId: string, cp: SignedCheckpoint | null): Promise<RepairItem[]> {
  const partition = partitionOf(chainId, t.topic)
  if (partition === null) return []
  const head: ChainHead = cp ? { chainId, seq: cp.seq, hash: Buffer.from(cp.hash, 'hex'), lastOffset: BigInt(cp.kafka_offset) } : emptyChain(chainId)
  const bad = await findUnvouchedRow(t, head, partition)
  if (!bad) return []
  const item: RepairItem = { action: 'quarantine', chain_id: chainId, from_seq: bad.seq, to_seq: null, outcome: 'would_quarantine', code: null, detail: bad.reason }
  if (t.dryRun) {
    const [n] = await t.store.queryRows<{ n: number }>(`SELECT count() AS n FROM ${t.store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64}`, { chain_id: chainId, from: bad.seq })
    item.detail = `${Number(n?.n ?? 0)} stored row(s) from seq ${bad.seq} on would be quarantined: ${bad.reason}`
    return [item]
  }
  const rows = await quarantineChainTail(t.store, chainId, bad.seq, bad.reason, nowMicros())
  await deleteViewRows(t.store, { chainId, from: bad.seq, to: null })
  t.logger.error(
    { chain_id: chainId, from_seq: bad.seq, rows: rows.length, alert: 'READTRAIL_INTEGRITY_ALERT' },
    'unsigned rows Kafka does not vouch for moved to quarantined_rows (readtrail repair); the next consume re-derives the chain from Kafka',
  )
  return [{ ...item, outcome: 'quarantined', detail: `${rows.length} row(s) from seq ${bad.seq} on moved to quarantined_rows: ${bad.reason}`, rows }]
}
