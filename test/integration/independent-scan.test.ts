import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { VerificationError } from '../../integrity/errors.js'
import type * as IndependentScanModule from '../../integrity/independent-scan.js'
import { fetchWindowFacts, planSegments, scanProducerBreaks, scanSegments, type SegmentScan } from '../../integrity/independent-scan.js'
import type { Suspect } from '../../integrity/row-facts.js'
import { HASH_SQL } from '../../store/access-log-columns.js'
import type { Store } from '../../store/store.js'
import { seedChain } from '../helpers/seed-chain.js'
import { freshDatabaseName, openTestStore } from '../helpers/store.js'

const GENESIS = '0'.repeat(64)
const NO_CACHES = { use_query_condition_cache: 0, use_query_cache: 0 } as const

type IndependentScan = typeof IndependentScanModule

/** The compiled module, as the CLI runs it (the integration global setup builds dist/). */
async function compiledScan(): Promise<IndependentScan> {
  const file = resolve(fileURLToPath(new URL('../../', import.meta.url)), 'dist/integrity/independent-scan.js')
  return (await import(pathToFileURL(file).href)) as IndependentScan
}

async function chainsOf(store: Store): Promise<{ chain_id: string; max_seq: number }[]> {
  const rows = await store.queryRows<{ chain_id: string; max_seq: number }>(
    `SELECT chain_id, max(seq) AS max_seq FROM ${store.table('access_log')} GROUP BY chain_id ORDER BY chain_id`,
  )
  return rows.map((r) => ({ chain_id: r.chain_id, max_seq: Number(r.max_seq) }))
}

/**
 * What the caller does with segment scans: link each segment's first row to
 * the last row of the chain's previous non-empty segment (genesis if none).
 */
function stitch(scans: readonly SegmentScan[]): Suspect[] {
  const out: Suspect[] = []
  let last: { seq: number; hash: string } | null = null
  for (const s of scans) {
    if (s.lo === 0) last = null
    else if (s.first) {
      const pred = last ?? { seq: 0, hash: GENESIS }
      if (!s.first.self_ok || s.first.seq !== pred.seq + 1 || s.first.prev_hash !== pred.hash) out.push({ chain_id: s.chain_id, seq: s.first.seq, prev_seq: pred.seq })
    }
    out.push(...s.suspects)
    if (s.last) last = s.last
  }
  return out.sort((a, b) => (a.chain_id < b.chain_id ? -1 : a.chain_id > b.chain_id ? 1 : a.seq - b.seq || a.prev_seq - b.prev_seq))
}

function mergeCounts(scans: readonly SegmentScan[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const s of scans) for (const [p, n] of Object.entries(s.producer_counts)) counts[p] = (counts[p] ?? 0) + n
  return counts
}

/** The suspect rule as the in-DB verifier states it in SQL, every hash computed by ClickHouse. */
async function suspectsBySql(store: Store, chainId: string): Promise<Suspect[]> {
  const rows = await store.queryRows<{ seq: number; prev_seq: number }>(
    `SELECT seq, prev_seq FROM (
       SELECT seq, hash = ${HASH_SQL} AS self_ok,
              prev_hash = lagInFrame(hash, 1, toFixedString(unhex(repeat('00', 32)), 32)) OVER w AS link_ok,
              lagInFrame(seq, 1, toUInt64(0)) OVER w AS prev_seq
       FROM ${store.table('access_log')} WHERE chain_id = {c:String}
       WINDOW w AS (ORDER BY seq, hash ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
     ) WHERE NOT self_ok OR NOT link_ok OR seq != prev_seq + 1
     ORDER BY seq, prev_seq`,
    { c: chainId },
    NO_CACHES,
  )
  return rows.map((r) => ({ chain_id: chainId, seq: Number(r.seq), prev_seq: Number(r.prev_seq) }))
}

async function alter(store: Store, statement: string, params: Record<string, unknown>): Promise<void> {
  await store.client.command({ query: `${statement} SETTINGS mutations_sync = 2`, query_params: params })
}

describe('independent scan over a real store', () => {
  it('an intact log scans clean with 1 and 2 workers, from sources and from dist/', async () => {
    const store = await openTestStore()
    const a = await seedChain(store, 'it-clean/0', 300, (i) => ({ producer_id: 'prod-a', producer_seq: i + 1 }))
    await seedChain(store, 'it-clean/1', 50, (i) => ({ producer_id: 'prod-b', producer_seq: i + 1 }))
    const plan = planSegments(await chainsOf(store), 64, new Map([['it-clean/0', [1, 64, 65, 300, 301]]]))
    expect(plan.map((r) => [r.chain_id, r.lo, r.hi])).toEqual([
      ['it-clean/0', 0, 64],
      ['it-clean/0', 65, 128],
      ['it-clean/0', 129, 192],
      ['it-clean/0', 193, 256],
      ['it-clean/0', 257, null],
      ['it-clean/1', 0, null],
    ])
    const hashes = await store.queryRows<{ seq: number; hash: string }>(
      `SELECT seq, lower(hex(hash)) AS hash FROM ${store.table('access_log')} WHERE chain_id = 'it-clean/0' AND seq IN (1, 64, 65, 300) ORDER BY seq`,
    )

    const compiled = await compiledScan()
    for (const [label, scan] of [
      ['sources', scanSegments],
      ['dist', compiled.scanSegments],
    ] as const) {
      for (const workers of [1, 2]) {
        const progress: number[] = []
        const scans = await scan(store, plan, { workers, maxSuspects: 10, onProgress: (n) => progress.push(n) })
        const what = `${label}, ${workers} worker(s)`
        expect(scans.map((s) => [s.chain_id, s.lo, s.hi]), what).toEqual(plan.map((r) => [r.chain_id, r.lo, r.hi]))
        expect(scans.map((s) => s.rows), what).toEqual([64, 64, 64, 64, 44, 50])
        expect(stitch(scans), what).toEqual([])
        expect(scans.every((s) => s.first?.self_ok && !s.suspects_truncated), what).toBe(true)
        expect(scans.map((s) => [s.first?.seq, s.last?.seq]), what).toEqual([[1, 64], [65, 128], [129, 192], [193, 256], [257, 300], [1, 50]])
        expect(scans[0]!.first?.prev_hash, what).toBe(GENESIS)
        expect(mergeCounts(scans), what).toEqual({ 'prod-a': 300, 'prod-b': 50 })
        expect(scans.flatMap((s) => s.checkpoint_rows), what).toEqual(hashes.map((h) => ({ chain_id: 'it-clean/0', seq: Number(h.seq), hash: h.hash, self_ok: true })))
        expect(progress.at(-1), what).toBe(350)
      }
    }

    // Several segment queries at once (the default on a server) give the same answers.
    const reference = await scanSegments(store, plan, { workers: 1, maxSuspects: 10 })
    expect(await scanSegments(store, plan, { workers: 2, maxSuspects: 10, queries: 3 })).toEqual(reference)

    const facts = await fetchWindowFacts(store, 'it-clean/0', 63, 66)
    expect(facts.map((f) => [f.seq, f.self_ok, f.event_id])).toEqual([63, 64, 65, 66].map((s) => [s, true, a[s - 1]!.event_id]))
    expect(facts[1]!.hash).toBe(hashes[1]!.hash)
    expect(facts[2]!.prev_hash).toBe(facts[1]!.hash)
  })

  it('after tampering, agrees with ClickHouse’s own re-hash and the in-DB suspect rule, across segment boundaries', async () => {
    const store = await openTestStore()
    const chain = 'it-tamper/0'
    const table = store.table('access_log')
    await seedChain(store, chain, 200, (i) => ({ producer_id: 'prod-t', producer_seq: i + 1 }))
    // Segments of 50: 0..50, 51..100, 101..150, 151..
    const edit = (seq: number) => alter(store, `ALTER TABLE ${table} UPDATE principal_id = 'mallory' WHERE chain_id = {c:String} AND seq = {s:UInt64}`, { c: chain, s: seq })
    await edit(30) // inside a segment
    await edit(51) // the first row of a segment
    await edit(200) // the last row of the chain
    await alter(store, `ALTER TABLE ${table} DELETE WHERE chain_id = {c:String} AND seq IN (75, 101)`, { c: chain }) // inside; first of a segment
    await store.client.command({ query: `INSERT INTO ${table} SELECT * FROM ${table} WHERE chain_id = {c:String} AND seq = 120`, query_params: { c: chain } })
    await store.client.command({
      query: `INSERT INTO ${table} SELECT * REPLACE (toFixedString(unhex(repeat('ff', 32)), 32) AS hash, 'forger' AS principal_id) FROM ${table} WHERE chain_id = {c:String} AND seq = 160`,
      query_params: { c: chain },
    })

    // Row by row, self_ok is exactly ClickHouse's `hash = SHA256(formatRow(...))`.
    // (An alias named hash would shadow the column inside HASH_SQL.)
    const byClickHouse = await store.queryRows<{ seq: number; ok: number; hash_hex: string }>(
      `SELECT seq, hash = ${HASH_SQL} AS ok, lower(hex(hash)) AS hash_hex FROM ${table} WHERE chain_id = {c:String} ORDER BY seq, hash`,
      { c: chain },
      NO_CACHES,
    )
    const facts = await fetchWindowFacts(store, chain, 0, 1000)
    expect(facts.map((f) => [f.seq, f.self_ok, f.hash])).toEqual(byClickHouse.map((r) => [Number(r.seq), Boolean(Number(r.ok)), r.hash_hex]))
    expect(facts.filter((f) => !f.self_ok).map((f) => f.seq)).toEqual([30, 51, 160, 200])

    const expected = [
      [30, 29],
      [51, 50],
      [76, 74],
      [102, 100],
      [120, 120],
      [160, 160],
      [161, 160],
      [200, 199],
    ].map(([seq, prev_seq]) => ({ chain_id: chain, seq: seq!, prev_seq: prev_seq! }))
    expect(await suspectsBySql(store, chain)).toEqual(expected)

    const plan = planSegments(await chainsOf(store), 50, new Map([[chain, [120, 160]]]))
    for (const workers of [1, 2]) {
      const scans = await scanSegments(store, plan, { workers, maxSuspects: 100 })
      expect(stitch(scans)).toEqual(expected)
      // Both copies of a duplicated seq are checkpoint rows.
      expect(scans.flatMap((s) => s.checkpoint_rows).map((r) => [r.seq, r.self_ok])).toEqual([
        [120, true],
        [120, true],
        [160, true],
        [160, false],
      ])
      expect(scans[2]!.first).toMatchObject({ seq: 102, self_ok: true })
      expect(scans[1]!.first).toMatchObject({ seq: 51, self_ok: false })
      expect(mergeCounts(scans)).toEqual({ 'prod-t': 200 })
    }

    // The cap holds per segment.
    const capped = await scanSegments(store, plan, { workers: 2, maxSuspects: 1 })
    expect(capped[3]!.suspects).toEqual([{ chain_id: chain, seq: 160, prev_seq: 160 }])
    expect(capped[3]!.suspects_truncated).toBe(true)
  })

  it('finds producer holes, repeats and late starts; counts rows per producer', async () => {
    const store = await openTestStore()
    const plan: [string, number][] = [
      ['hole', 1], ['rep', 1], ['hole', 2], ['rep', 2], ['hole', 3], ['rep', 2], ['late', 2],
      ['hole', 5], ['rep', 3], ['hole', 6], ['late', 3],
    ]
    await seedChain(store, 'it-prod/0', 6, (i) => ({ producer_id: plan[i]![0], producer_seq: plan[i]![1] }))
    await seedChain(store, 'it-prod/1', 5, (i) => ({ producer_id: plan[i + 6]![0], producer_seq: plan[i + 6]![1] }))
    const result = await scanProducerBreaks(store, { limit: 10 })
    const ingested = Date.UTC(2026, 10, 27, 12) * 1000
    expect(result).toEqual({
      breaks: [
        { producer_id: 'hole', producer_seq: 5, prev_producer_seq: 3, chain_id: 'it-prod/1', seq: 2, ingested_at_us: ingested },
        { producer_id: 'late', producer_seq: 2, prev_producer_seq: 0, chain_id: 'it-prod/1', seq: 1, ingested_at_us: ingested },
        { producer_id: 'rep', producer_seq: 2, prev_producer_seq: 2, chain_id: expect.stringMatching(/^it-prod\//), seq: expect.any(Number), ingested_at_us: ingested },
      ],
      truncated: false,
      counts: { hole: 5, late: 2, rep: 4 },
      last: { hole: 6, late: 3, rep: 3 },
    })
    // The same rows scanSegments counts.
    const scans = await scanSegments(store, planSegments(await chainsOf(store), 100, new Map()), { workers: 2, maxSuspects: 10 })
    expect(mergeCounts(scans)).toEqual(result.counts)

    const limited = await scanProducerBreaks(store, { limit: 1 })
    expect([limited.breaks.length, limited.truncated]).toEqual([1, true])
  })

  it('a store that cannot answer is VERIFY_FAILED and retriable', async () => {
    const store = (await openTestStore()).withDatabase(freshDatabaseName())
    const err = await scanSegments(store, [{ chain_id: 'x/0', lo: 0, hi: null, checkpoint_seqs: [] }], { workers: 2, maxSuspects: 1 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(VerificationError)
    expect([(err as VerificationError).code, (err as VerificationError).retriable]).toEqual(['VERIFY_FAILED', true])
    await expect(scanProducerBreaks(store, { limit: 1 })).rejects.toMatchObject({ code: 'VERIFY_FAILED' })
  })

  it('refuses a plan that could leave rows out', () => {
    expect(() => planSegments([{ chain_id: 'c', max_seq: 10 }], 0, new Map())).toThrow(/rowsPerSegment/)
    expect(planSegments([{ chain_id: 'c', max_seq: 0 }], 10, new Map([['c', [3]]]))).toEqual([{ chain_id: 'c', lo: 0, hi: null, checkpoint_seqs: [3] }])
    expect(planSegments([{ chain_id: 'c', max_seq: 20 }], 10, new Map()).map((r) => [r.lo, r.hi])).toEqual([
      [0, 10],
      [11, null],
    ])
  })
})
