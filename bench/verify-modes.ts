/**
 * `readtrail verify` end to end, every mode, with signed checkpoints: full
 * in-db, full independent with 1 and 2 workers, and incremental
 * (--since-checkpoint) after 10k new rows on a small and on a large log, to
 * show an incremental run costs O(new rows), not O(log).
 *
 *   npx tsx bench/verify-modes.ts [rows]            (default 5,000,000)
 *   npx tsx bench/verify-modes.ts 5000000 --small=1000000 --append=10000
 *
 * Rows are chained in-process and loaded into access_log as the
 * chain writer loads them; the query views' materialised views are dropped
 * first (view checks are measured by bench/verify.ts), so every mode here
 * checks the chain, the checkpoints and the producers' sequences. A
 * checkpoint is signed every 100k rows of a chain, as the signer would every
 * interval.
 *
 * With a Kafka log to hold the chains against (`verify` given the access
 * topic), each mode also collects every chain's offset breaks
 * (integrity/chain-offsets.ts); the last table times that store-side half
 * alone, per mode, since the rows here were never produced to a topic. The
 * Kafka half reads only partition watermarks and the group's offsets on a
 * clean log (dead letters and gap messages only when there are gaps).
 */
import { generateKeyPairSync } from 'node:crypto'
import { checkpointDigest, GENESIS_CHECKPOINT, keyId, signCheckpoint, type SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { nowMicros } from '../common/time.js'
import { chainIdOf, emptyChain, linkEntries, type ChainHead } from '../consumers/chain.js'
import { chainOffsetsInDb, chainOffsetsStreamed } from '../integrity/chain-offsets.js'
import { analyseCheckpoints } from '../integrity/check-checkpoints.js'
import type { VerificationReport } from '../integrity/report.js'
import { nextVerifyState, type VerifyState } from '../integrity/verify-state.js'
import { collectInDb } from '../integrity/collect-in-db.js'
import { collectIndependent } from '../integrity/collect-independent.js'
import type { FactsRequest } from '../integrity/facts.js'
import { verifyLog, type VerifyOptions } from '../integrity/verify.js'
import type { Store } from '../store/store.js'
import { machineLine, openBenchStore, perSecond, printTable, realisticEvents } from './bench-support.js'
import { parseBenchArgs } from './args.js'

const { rows: ROWS, small: SMALL, append: APPEND } = parseBenchArgs(
  '`readtrail verify` end to end in every mode, with signed checkpoints, on a small and a large log.',
  {
    rows: { type: 'number', default: 5_000_000, help: 'rows of the large log (also the positional ROWS)' },
    small: { type: 'number', default: 1_000_000, help: 'rows of the small log' },
    append: { type: 'number', default: 10_000, help: 'rows appended before the incremental runs' },
  }, { rowsPositional: true },
)
const CHAINS = 3
const BATCH = 20_000
const CHECKPOINT_EVERY = 100_000
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

const key = generateKeyPairSync('ed25519')
const verifying = { publicKey: key.publicKey, keyId: keyId(key.publicKey) }

/** One log being built: chain heads, the checkpoints signed so far, a producer per batch. */
interface Log {
  store: Store
  heads: ChainHead[]
  checkpoints: SignedCheckpoint[]
  sinceCheckpoint: number[]
  rows: number
  batches: number
}

function sign(log: Log, c: number): void {
  const head = log.heads[c]!
  const previous = log.checkpoints.filter((cp) => cp.chain_id === head.chainId).at(-1)
  log.checkpoints.push(
    signCheckpoint(
      {
        v: 1,
        database: log.store.database,
        chain_id: head.chainId,
        index: (previous?.index ?? 0) + 1,
        seq: head.seq,
        hash: head.hash.toString('hex'),
        kafka_offset: String(head.lastOffset ?? 0n),
        signed_at: new Date().toISOString(),
        prev: previous ? checkpointDigest(previous) : GENESIS_CHECKPOINT,
        key_id: verifying.keyId,
      },
      key.privateKey,
    ),
  )
  log.sinceCheckpoint[c] = 0
}

/** Appends `count` rows round-robin over the chains, signing every CHECKPOINT_EVERY rows of a chain and at the end. */
async function grow(log: Log, count: number): Promise<number> {
  const t0 = performance.now()
  for (let done = 0; done < count; log.batches++) {
    const c = log.batches % CHAINS
    const n = Math.min(BATCH, count - done)
    // Each batch is its own producer numbered from 1: no producer holes.
    const events = realisticEvents(n, { producerId: `bench-verify-${log.batches}`, startMicros: Date.UTC(2026, 10, 1) * 1000 + log.rows * 1000 })
    const head = log.heads[c]!
    const linked = linkEntries(head, events.map((event, i) => ({ event, offset: BigInt(head.seq + i), schemaVersion: 1 })), nowMicros())
    await log.store.insertRowBinary('access_log', linked.rows, linked.count)
    log.heads[c] = linked.head
    log.sinceCheckpoint[c]! += n
    if (log.sinceCheckpoint[c]! >= CHECKPOINT_EVERY) sign(log, c)
    done += n
    log.rows += n
  }
  for (let c = 0; c < CHAINS; c++) if (log.sinceCheckpoint[c]! > 0) sign(log, c)
  return performance.now() - t0
}

async function verify(log: Log, options: Partial<VerifyOptions>): Promise<{ report: VerificationReport; state: VerifyState; ms: number }> {
  const analysis = analyseCheckpoints(
    { file: { kind: 'file', where: 'bench', missing: false, entries: log.checkpoints.map((checkpoint, i) => ({ at: `line ${i + 1}`, checkpoint })), unreadable: [] }, topic: null },
    verifying,
    log.store.database,
  )
  const t0 = performance.now()
  // The collectors directly, not verify-store's collectFacts: that also
  // compares the query tables' definitions with a scratch schema, and this
  // log dropped the views' materialised views on purpose (bench/verify.ts
  // measures views; the definitions check costs the same at any size).
  const collect = (request: FactsRequest) => (request.mode === 'independent' ? collectIndependent(log.store, request) : collectInDb(log.store, request))
  const outcome = await verifyLog(collect, log.store.database, {
    views: false,
    producerGraceMs: 0,
    ...options,
    checkpoints: { analysis, sources: { file: 'bench', topic: null, key_id: verifying.keyId } },
  })
  const ms = performance.now() - t0
  if (!outcome.report.ok) throw new Error(`bench log did not verify: ${JSON.stringify(outcome.report.findings.slice(0, 3))}`)
  return { report: outcome.report, state: nextVerifyState(options.since ?? null, outcome.report, outcome.producerThrough), ms }
}

async function main(): Promise<void> {
  console.log(`bench/verify-modes — ${machineLine()}`)
  console.log(`${fmt(ROWS)} rows (incremental also at ${fmt(SMALL)}), ${CHAINS} chains, a checkpoint every ${fmt(CHECKPOINT_EVERY)} rows per chain, +${fmt(APPEND)} rows per incremental run`)
  const bench = openBenchStore()
  try {
    const store = await bench.freshDatabase('modes')
    await store.client.command({ query: `DROP VIEW ${store.table('access_by_principal_mv')}` })
    const log: Log = { store, heads: Array.from({ length: CHAINS }, (_, c) => emptyChain(chainIdOf('rt-bench-modes', c))), checkpoints: [], sinceCheckpoint: [0, 0, 0], rows: 0, batches: 0 }

    const incremental: Record<string, string | number>[] = []
    /** Full in-db run at the current size, then +APPEND rows and an incremental run in each mode. */
    const incrementalAt = async () => {
      const base = await verify(log, { mode: 'in-db' })
      await grow(log, APPEND)
      const inDb = await verify(log, { mode: 'in-db', since: base.state })
      const independent = await verify(log, { mode: 'independent', workers: 1, since: base.state })
      incremental.push({
        'log rows': fmt(log.rows),
        'rows checked': fmt(inDb.report.rows_verified),
        'in-db ms': Math.round(inDb.ms),
        'independent ms': Math.round(independent.ms),
        'full in-db ms': Math.round(base.ms),
      })
      console.log(`  incremental at ${fmt(log.rows)} rows: in-db ${Math.round(inDb.ms)} ms, independent ${Math.round(independent.ms)} ms (full in-db ${Math.round(base.ms)} ms)`)
    }

    const genSmall = await grow(log, SMALL)
    console.log(`  generated ${fmt(log.rows)} rows in ${(genSmall / 1000).toFixed(0)} s`)
    await incrementalAt()
    const genLarge = await grow(log, ROWS - log.rows)
    console.log(`  generated ${fmt(log.rows)} rows in ${((genSmall + genLarge) / 1000).toFixed(0)} s`)
    await incrementalAt()

    const full: Record<string, string | number>[] = []
    for (const [label, options] of [
      ['in-db', { mode: 'in-db' }],
      ['independent, 1 worker', { mode: 'independent', workers: 1 }],
      ['independent, 2 workers', { mode: 'independent', workers: 2 }],
    ] as const) {
      const run = await verify(log, options)
      full.push({ mode: label, rows: fmt(run.report.rows_verified), ms: Math.round(run.ms), 'rows/s': fmt(perSecond(run.report.rows_verified, run.ms)) })
      console.log(`  full ${label}: ${fmt(perSecond(run.report.rows_verified, run.ms))} rows/s`)
    }
    // The offsets each mode collects when verify holds the chains against Kafka.
    const offsets: Record<string, string | number>[] = []
    for (const mode of ['in-db', 'independent'] as const) {
      const t0 = performance.now()
      for (const head of log.heads) {
        const facts =
          mode === 'in-db' ? await chainOffsetsInDb(store, head.chainId, 0, 1000) : await chainOffsetsStreamed(store, head.chainId, 0, head.seq, 1000)
        if (!facts || facts.breaks.length > 0 || facts.head_seq !== head.seq) throw new Error(`bench offsets of ${head.chainId} are not contiguous: ${JSON.stringify(facts)}`)
      }
      const ms = performance.now() - t0
      const fullMs = Number(full.find((f) => String(f['mode']).startsWith(mode))?.['ms'] ?? 0)
      offsets.push({ mode, 'offset facts ms': Math.round(ms), 'offset facts rows/s': fmt(perSecond(log.rows, ms)), 'verify + offsets rows/s': fmt(perSecond(log.rows, fullMs + ms)) })
      console.log(`  offset facts ${mode}: ${fmt(perSecond(log.rows, ms))} rows/s`)
    }
    printTable(`Full verification, ${fmt(log.rows)} rows, checkpoints and producers included (views not checked)`, full)
    printTable(`Offset facts for the Kafka check (store side), ${fmt(log.rows)} rows; the last column adds them to the full run above (independent: 1 worker)`, offsets)
    printTable(`Incremental verification (--since-checkpoint) after +${fmt(APPEND)} rows`, incremental)
  } finally {
    await bench.close()
  }
}

await main()
