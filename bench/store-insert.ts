/**
 * What access_log's projections (store/ddl.ts ACCESS_LOG_PROJECTIONS) cost
 * the chain writer's inserts: the same chained batches inserted through
 * access_log_ingest into a store as readtrail creates it, and into one whose
 * access_log has its projections dropped, alternating, in one run.
 *
 *   npx tsx bench/store-insert.ts [--rows=200000] [--batch=5000] [--rounds=2]
 */
import { ACCESS_LOG_PROJECTIONS } from '../store/ddl.js'
import { dropDatabase, loadChains, machineLine, openBenchStore, perSecond, printTable } from './bench-support.js'
import { parseBenchArgs } from './args.js'

const { rows: ROWS, batch: BATCH, rounds: ROUNDS } = parseBenchArgs(
  "What access_log's projections cost the chain writer's inserts: the same chained batches into a store with and without them.",
  {
    rows: { type: 'number', default: 200_000, help: 'rows inserted per round and store' },
    batch: { type: 'number', default: 5_000, help: 'rows per insert' },
    rounds: { type: 'number', default: 2, help: 'alternating rounds' },
  },
)

async function main(): Promise<void> {
  console.log(`bench/store-insert — ${machineLine()}`)
  const bench = openBenchStore()
  const rates: Record<'with' | 'without', number[]> = { with: [], without: [] }
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first: the engine's background merges of one run overlap the next.
      for (const kind of round % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const)) {
        const store = await bench.freshDatabase(`insert_${kind}`)
        if (kind === 'without') {
          for (const p of ACCESS_LOG_PROJECTIONS) await store.client.command({ query: `ALTER TABLE ${store.table('access_log')} DROP PROJECTION ${p.name}` })
        }
        console.log(`round ${round + 1}, ${kind} projections`)
        const { insertMs } = await loadChains(store, { rows: ROWS, chains: 3, batch: BATCH })
        rates[kind].push(perSecond(ROWS, insertMs))
        await dropDatabase(store.client, store.database)
      }
    }
  } finally {
    await bench.close()
  }
  const best = (xs: number[]) => Math.max(...xs)
  printTable(`Inserts of ${ROWS.toLocaleString('en-US')} chained rows in batches of ${BATCH.toLocaleString('en-US')} (access_log, 2 views, 2 rollups), best of ${ROUNDS}`, [
    { access_log: 'with p_principal, p_days, p_hours (as created)', 'rows/s': Math.round(best(rates.with)) },
    { access_log: 'projections dropped', 'rows/s': Math.round(best(rates.without)) },
    { access_log: 'with / without', 'rows/s': (best(rates.with) / best(rates.without)).toFixed(2) },
  ])
}

await main()
