import { expect } from 'vitest'
import { verifyStore as verifyInDb } from '../../integrity/verify-store.js'
import type { Store } from '../../store/store.js'

export interface ChainPosition {
  chain_id: string
  seq: number
  event_id: string
}

/**
 * Pure check of the chain invariants the pipeline promises: within every
 * chain, sequence numbers run 1..n with no gap and no repeat, and no event is
 * stored twice anywhere. Returns human-readable violations (empty = fine).
 */
export function findChainViolations(rows: readonly ChainPosition[]): string[] {
  const violations: string[] = []
  const byChain = new Map<string, number[]>()
  const seen = new Map<string, string>()
  for (const r of rows) {
    const seqs = byChain.get(r.chain_id) ?? []
    seqs.push(r.seq)
    byChain.set(r.chain_id, seqs)
    const where = `${r.chain_id}#${r.seq}`
    const first = seen.get(r.event_id)
    if (first) violations.push(`event ${r.event_id} stored twice (${first} and ${where})`)
    else seen.set(r.event_id, where)
  }
  for (const [chain, seqs] of byChain) {
    seqs.sort((a, b) => a - b)
    seqs.forEach((seq, i) => {
      if (seq !== i + 1) violations.push(`chain ${chain}: position ${i + 1} holds seq ${seq}`)
    })
    if (violations.length > 20) break
  }
  return violations
}

/** Every expected event id is stored exactly once, and nothing else is. */
export function findDeliveryViolations(stored: readonly string[], expected: readonly string[]): string[] {
  const want = new Set(expected)
  const counts = new Map<string, number>()
  for (const id of stored) counts.set(id, (counts.get(id) ?? 0) + 1)
  const violations: string[] = []
  for (const id of want) if (!counts.has(id)) violations.push(`event ${id} missing`)
  for (const [id, n] of counts) {
    if (!want.has(id)) violations.push(`event ${id} was never produced`)
    if (n > 1) violations.push(`event ${id} stored ${n} times`)
  }
  return violations.slice(0, 20)
}

export async function readChainPositions(store: Store): Promise<ChainPosition[]> {
  const rows = await store.queryRows<ChainPosition>(
    `SELECT chain_id, seq, toString(event_id) AS event_id FROM ${store.table('access_log')} ORDER BY chain_id, seq`,
  )
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }))
}

/** The store holds exactly `expectedEventIds`, chained without gap or duplicate, and verify passes. */
export async function expectIntactChains(store: Store, expectedEventIds: readonly string[]): Promise<void> {
  const positions = await readChainPositions(store)
  expect(findChainViolations(positions)).toEqual([])
  expect(findDeliveryViolations(positions.map((p) => p.event_id), expectedEventIds)).toEqual([])
  const report = await verifyInDb(store)
  expect(report.findings.slice(0, 5), `${report.findings.length} findings`).toEqual([])
  expect(report.ok).toBe(true)
  expect(report.rows_verified).toBe(expectedEventIds.length)
}
