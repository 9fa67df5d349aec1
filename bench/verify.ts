/**
 * In-database verification speed on a large log, and proof that it catches
 * an edited row.
 *
 *   npx tsx bench/verify.ts [--rows=1000000] [--chains=3] [--batch=20000] [--runs=3]
 *   npx tsx bench/verify.ts --rows=5000000
 *
 * Rows are chained in-process with linkEntries (realistic events, 10 record
 * ids each) and loaded into access_log as the chain writer loads
 * them; then verifyInDb runs `runs` times (median reported), one row is
 * tampered with, and verifyInDb runs again.
 */
import { chainIdOf } from '../consumers/chain.js'
import { formatReport } from '../integrity/report.js'
import { verifyStore as verifyInDb } from '../integrity/verify-store.js'
import { HASH_SQL } from '../store/access-log-columns.js'
import type { Store } from '../store/store.js'
import { cpuSince, machineLine, median, openBenchStore, loadChains, perSecond, printTable, sampleCpu } from './bench-support.js'
import { parseBenchArgs } from './args.js'

const { rows: ROWS, chains: CHAINS, batch: BATCH, runs: RUNS } = parseBenchArgs(
  'In-database verification speed on a large log, and proof that it catches an edited row.',
  {
    rows: { type: 'number', default: 1_000_000, help: 'chained rows loaded' },
    chains: { type: 'number', default: 3, help: 'chains they are spread over' },
    batch: { type: 'number', default: 20_000, help: 'rows per insert while loading' },
    runs: { type: 'number', default: 3, help: 'timed verify runs (median printed)' },
  },
)

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

async function main(): Promise<void> {
  console.log(`bench/verify — ${machineLine()}`)
  console.log(`${fmt(ROWS)} rows over ${CHAINS} chains, loaded in batches of ${fmt(BATCH)}, verify runs ${RUNS}`)
  const bench = openBenchStore()
  try {
    const store = await bench.freshDatabase('verify')
    const load = await loadChains(store, { rows: ROWS, chains: CHAINS, batch: BATCH })
    printTable('Load (chain in TS, then insert into access_log and its view)', [
      { step: 'linkEntries (incl. making the events)', ms: load.linkMs, 'rows/s': perSecond(ROWS, load.linkMs) },
      { step: 'insertRowBinary (access_log + access_by_principal)', ms: load.insertMs, 'rows/s': perSecond(ROWS, load.insertMs) },
    ])
    const [size] = await store.queryRows<{ rows: number; bytes: number; compressed: number }>(
      `SELECT sum(rows) AS rows, sum(data_uncompressed_bytes) AS bytes, sum(data_compressed_bytes) AS compressed
       FROM system.parts WHERE database = {db:String} AND table = 'access_log' AND active`,
      { db: store.database },
    )
    console.log(`access_log: ${fmt(Number(size?.rows))} rows, ${(Number(size?.bytes) / 2 ** 20).toFixed(0)} MiB uncompressed, ${(Number(size?.compressed) / 2 ** 20).toFixed(0)} MiB on disk`)

    // Intact log: median of RUNS.
    const times: number[] = []
    let report = await verifyInDb(store)
    for (let i = 0; i < RUNS; i++) {
      const cpu = sampleCpu()
      const t0 = performance.now()
      report = await verifyInDb(store)
      times.push(performance.now() - t0)
      const spent = cpuSince(cpu)
      console.log(`  run ${i + 1}: ${fmt(times[i]!)} ms, ${(spent.processMs / spent.wallMs).toFixed(2)} cores`)
    }
    console.log(`\n${formatReport(report)}`)
    if (!report.ok || report.rows_verified !== ROWS) console.error(`WARNING: expected an intact log of ${ROWS} rows`)
    const verifyMs = median(times)
    const chainOnly: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now()
      await verifyInDb(store, { views: false })
      chainOnly.push(performance.now() - t0)
    }
    const chainOnlyMs = median(chainOnly)

    // Where verify's time goes: the same scan with only one of its checks.
    const rehashMs = await timeQuery(store, `SELECT countIf(hash != ${HASH_SQL}) AS bad FROM ${store.table('access_log')}`)
    const linkMs = await timeQuery(
      store,
      `SELECT countIf(NOT ok) AS bad FROM (
         SELECT prev_hash = lagInFrame(hash, 1, toFixedString(unhex(repeat('00', 32)), 32)) OVER w AND seq = lagInFrame(seq, 1, toUInt64(0)) OVER w + 1 AS ok
         FROM ${store.table('access_log')}
         WINDOW w AS (PARTITION BY chain_id ORDER BY seq ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW))`,
    )
    const scanMs = await timeQuery(store, `SELECT sum(length(record_ids)) + sum(length(principal_id)) AS n FROM ${store.table('access_log')}`)

    // Tamper with one row in the middle of the second chain.
    const chain = chainIdOf('rt-bench-verify', Math.min(1, CHAINS - 1))
    const seq = Math.max(1, Math.floor(ROWS / CHAINS / 2))
    const mutateStart = performance.now()
    await store.client.command({
      query: `ALTER TABLE ${store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = {chain:String} AND seq = {seq:UInt64} SETTINGS mutations_sync = 2`,
      query_params: { chain, seq },
    })
    const mutateMs = performance.now() - mutateStart
    const t0 = performance.now()
    const tampered = await verifyInDb(store)
    const tamperedMs = performance.now() - t0
    console.log(`\nAfter UPDATE principal_id = 'mallory' at ${chain} seq ${seq} (mutation took ${fmt(mutateMs)} ms):`)
    console.log(formatReport(tampered))
    const found = tampered.findings.some((f) => f.chain_id === chain && f.seq === seq && f.kind === 'hash_mismatch')
    if (!found) console.error('WARNING: verify did not report the tampered row')

    printTable(`verifyInDb on ${fmt(ROWS)} rows (${CHAINS} chains)`, [
      { measurement: `verifyInDb, intact (median of ${RUNS}): chain + query views`, ms: verifyMs, 'rows/s': perSecond(ROWS, verifyMs), result: report.ok ? 'ok' : 'DAMAGED' },
      { measurement: `verifyInDb --skip-views, intact (median of ${RUNS}): chain only`, ms: chainOnlyMs, 'rows/s': perSecond(ROWS, chainOnlyMs), result: '' },
      {
        measurement: 'verifyInDb after tampering one row',
        ms: tamperedMs,
        'rows/s': perSecond(ROWS, tamperedMs),
        result: found ? `found: ${tampered.findings.map((f) => `${f.kind} at seq ${f.seq}`).join(', ')}` : 'MISSED',
      },
      { measurement: '  rehash only (SHA256 of every row’s RowBinary)', ms: rehashMs, 'rows/s': perSecond(ROWS, rehashMs), result: '' },
      { measurement: '  links + seq only (window over chain order)', ms: linkMs, 'rows/s': perSecond(ROWS, linkMs), result: '' },
      { measurement: '  plain scan of two columns (floor)', ms: scanMs, 'rows/s': perSecond(ROWS, scanMs), result: '' },
    ])
  } finally {
    await bench.close()
  }
}


async function timeQuery(store: Store, query: string): Promise<number> {
  const t0 = performance.now()
  await store.queryRows(query)
  return performance.now() - t0
}

await main()
