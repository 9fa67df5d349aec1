/**
 * The chain writer's inserts, two figures in one run:
 *
 * 1. What access_log's projections (store/ddl.ts ACCESS_LOG_PROJECTIONS)
 *    cost: the same chained batches inserted into a store as readtrail
 *    creates it, and into one whose access_log has its projections dropped,
 *    alternating.
 * 2. The RowBinary insert (store.insertRowBinary: the bytes linkEntries
 *    hashed, straight into access_log) against the JSONCompactEachRow insert
 *    it replaced (hex hashes and integer times into a Null-engine table whose
 *    materialised view converted them into access_log), the same rows into
 *    fresh stores, alternating. The JSON table, its view and its lines are
 *    made here, as the previous version made them.
 *
 *   npx tsx bench/store-insert.ts [--rows=200000] [--batch=5000] [--rounds=2]
 */
import { Readable } from 'node:stream'
import { chainIdOf, emptyChain, linkEntries, type ChainedBatch, type ChainHead } from '../consumers/chain.js'
import { nowMicros } from '../common/time.js'
import { ACCESS_LOG_LAYOUT, COL, RowWalker } from '../integrity/row-walker.js'
import { ACCESS_LOG_COLUMNS, HASH_COLUMN, HASH_SQL, type ChainedRow } from '../store/access-log-columns.js'
import { ACCESS_LOG_PROJECTIONS } from '../store/ddl.js'
import type { Store } from '../store/store.js'
import { dropDatabase, loadChains, machineLine, openBenchStore, perSecond, printTable, realisticEvents, type BenchStore } from './bench-support.js'
import { parseBenchArgs } from './args.js'

const { rows: ROWS, batch: BATCH, rounds: ROUNDS } = parseBenchArgs(
  "The chain writer's inserts: with and without access_log's projections, and RowBinary against the JSONCompactEachRow path it replaced.",
  {
    rows: { type: 'number', default: 200_000, help: 'rows inserted per round and store' },
    batch: { type: 'number', default: 5_000, help: 'rows per insert' },
    rounds: { type: 'number', default: 2, help: 'alternating rounds' },
  },
)

const CHAINS = 3

/**
 * How the previous version carried the columns JSON cannot hold as
 * themselves: bytes as hex, times as integer microseconds, UInt64 offsets as
 * strings, each converted back by the view's `expr`. Every other column went
 * as its own value and type.
 */
const JSON_INGEST: Readonly<Record<string, { type: string; expr: string; json: (r: ChainedRow) => unknown }>> = {
  prev_hash: { type: 'String', expr: 'unhex(prev_hash)', json: (r) => r.prev_hash.toString('hex') },
  kafka_offset: { type: 'UInt64', expr: 'kafka_offset', json: (r) => r.kafka_offset.toString() },
  ingested_at: { type: 'Int64', expr: "fromUnixTimestamp64Micro(ingested_at, 'UTC')", json: (r) => r.ingested_at },
  occurred_at: { type: 'Int64', expr: "fromUnixTimestamp64Micro(occurred_at, 'UTC')", json: (r) => r.occurred_at },
  session_hash: { type: 'Nullable(String)', expr: 'unhex(session_hash)', json: (r) => r.session_hash?.toString('hex') ?? null },
}

/** The same rows both ways: RowBinary batches as linkEntries returns them, and JSONCompactEachRow lines of each. */
interface PreparedRows {
  batches: ChainedBatch[]
  lines: string[][]
  /** Time spent building the JSON lines, on top of linking (which the RowBinary path needs alone). */
  jsonMs: number
}

function prepareRows(): PreparedRows {
  const heads: ChainHead[] = Array.from({ length: CHAINS }, (_, c) => emptyChain(chainIdOf('rt-bench-insert', c)))
  const batches: ChainedBatch[] = []
  const lines: string[][] = []
  let jsonMs = 0
  let offset = 0
  for (let done = 0, b = 0; done < ROWS; b++) {
    const c = b % CHAINS
    const n = Math.min(BATCH, ROWS - done)
    const events = realisticEvents(n, { producerId: `bench-insert-${b}`, startMicros: Date.UTC(2026, 10, 1) * 1000 + done * 1000 })
    const entries = events.map((event, i) => ({ event, offset: BigInt(offset + i), schemaVersion: 1 }))
    const ingestedAt = nowMicros()
    const head = heads[c]!
    const linked = linkEntries(head, entries, ingestedAt)
    // Each row's hash, read from the batch (the JSON path carried it as hex).
    const hashes: Buffer[] = []
    const walker = new RowWalker(ACCESS_LOG_LAYOUT, (r) => hashes.push(Buffer.from(r.buf.subarray(r.offsets[COL.hash]!, r.end))), { rehash: false, describe: () => 'bench batch' })
    walker.push(linked.rows)
    walker.finish()
    const t0 = performance.now()
    lines.push(
      entries.map((entry, k) => {
        const row: ChainedRow = { ...entry.event, chain_id: head.chainId, seq: head.seq + k + 1, prev_hash: k === 0 ? head.hash : hashes[k - 1]!, kafka_offset: entry.offset, message_index: 0, message_events: 1, ingested_at: ingestedAt, schema_version: 1, key_id: '' }
        const values = ACCESS_LOG_COLUMNS.map((col) => JSON_INGEST[col.name]?.json(row) ?? row[col.name])
        values.push(hashes[k]!.toString('hex'))
        return JSON.stringify(values)
      }),
    )
    jsonMs += performance.now() - t0
    batches.push(linked)
    heads[c] = linked.head
    if (c === CHAINS - 1) offset += n
    done += n
  }
  return { batches, lines, jsonMs }
}

/** The previous version's ingest table and view, added to a fresh store. */
async function createJsonIngest(store: Store): Promise<string> {
  const table = store.table('access_log_json_ingest')
  const columns = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].map((c) => ({ name: c.name, type: c.type, expr: c.name, ...JSON_INGEST[c.name] }))
  columns[columns.length - 1] = { name: 'hash', type: 'String', expr: 'unhex(hash)' }
  await store.client.command({ query: `CREATE TABLE ${table} (${columns.map((c) => `${c.name} ${c.type}`).join(', ')}) ENGINE = Null` })
  await store.client.command({
    query: `CREATE MATERIALIZED VIEW ${store.table('access_log_json_ingest_mv')} TO ${store.table('access_log')} AS SELECT ${columns.map((c) => (c.expr === c.name ? c.name : `${c.expr} AS ${c.name}`)).join(', ')} FROM ${table}`,
  })
  return table
}

/** One insert of prepared rows per batch into a fresh store; returns rows/s of the inserts alone. */
async function insertRate(bench: BenchStore, kind: 'rowbinary' | 'json', rows: PreparedRows): Promise<number> {
  const store = await bench.freshDatabase(`format_${kind}`)
  try {
    const jsonTable = kind === 'json' ? await createJsonIngest(store) : ''
    const t0 = performance.now()
    for (const [b, batch] of rows.batches.entries()) {
      if (kind === 'rowbinary') {
        await store.insertRowBinary('access_log', batch.rows, batch.count)
      } else {
        // The previous version's insertJsonLines, as it was.
        const result = await store.client.exec({ query: `INSERT INTO ${jsonTable} FORMAT JSONCompactEachRow`, values: Readable.from([rows.lines[b]!.join('\n')]) })
        result.stream.resume()
      }
    }
    const ms = performance.now() - t0
    // Both paths must have stored the same, intact rows for the figures to compare.
    const [stored] = await store.queryRows<{ n: number; ok: number }>(`SELECT count() AS n, countIf(hash = ${HASH_SQL}) AS ok FROM ${store.table('access_log')}`)
    if (Number(stored?.n) !== ROWS || Number(stored?.ok) !== ROWS) throw new Error(`${kind}: ${stored?.n} rows stored (${stored?.ok} re-hash to their hash), ${ROWS} inserted`)
    return perSecond(ROWS, ms)
  } finally {
    await dropDatabase(store.client, store.database)
  }
}

async function main(): Promise<void> {
  console.log(`bench/store-insert — ${machineLine()}`)
  const bench = openBenchStore()
  const rates: Record<'with' | 'without' | 'rowbinary' | 'json', number[]> = { with: [], without: [], rowbinary: [], json: [] }
  let prepared: PreparedRows | undefined
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first: the engine's background merges of one run overlap the next.
      for (const kind of round % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const)) {
        const store = await bench.freshDatabase(`insert_${kind}`)
        if (kind === 'without') {
          for (const p of ACCESS_LOG_PROJECTIONS) await store.client.command({ query: `ALTER TABLE ${store.table('access_log')} DROP PROJECTION ${p.name}` })
        }
        console.log(`round ${round + 1}, ${kind} projections`)
        const { insertMs } = await loadChains(store, { rows: ROWS, chains: CHAINS, batch: BATCH })
        rates[kind].push(perSecond(ROWS, insertMs))
        await dropDatabase(store.client, store.database)
      }
    }
    prepared = prepareRows()
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of round % 2 === 0 ? (['rowbinary', 'json'] as const) : (['json', 'rowbinary'] as const)) {
        console.log(`round ${round + 1}, ${kind} insert`)
        rates[kind].push(await insertRate(bench, kind, prepared))
      }
    }
  } finally {
    await bench.close()
  }
  const best = (xs: number[]) => Math.max(...xs)
  printTable(`Inserts of ${ROWS.toLocaleString('en-US')} chained rows in batches of ${BATCH.toLocaleString('en-US')} (access_log with its projections and indexes, and access_by_principal), best of ${ROUNDS}`, [
    { access_log: 'with p_principal, p_days, p_hours (as created)', 'rows/s': Math.round(best(rates.with)) },
    { access_log: 'projections dropped', 'rows/s': Math.round(best(rates.without)) },
    { access_log: 'with / without', 'rows/s': (best(rates.with) / best(rates.without)).toFixed(2) },
  ])
  const jsonPrepUs = (prepared.jsonMs * 1000) / ROWS
  const rounds = (xs: number[]) => xs.map((x) => Math.round(x).toLocaleString('en-US')).join(', ')
  printTable(`The same ${ROWS.toLocaleString('en-US')} rows by insert format (inserts alone, best of ${ROUNDS}; linking excluded, it is the same for both)`, [
    { insert: 'RowBinary into access_log (insertRowBinary)', 'rows/s': Math.round(best(rates.rowbinary)), note: `rounds ${rounds(rates.rowbinary)}; the hashed bytes, no extra encoding` },
    {
      insert: 'JSONCompactEachRow via Null table + view (previous)',
      'rows/s': Math.round(best(rates.json)),
      note: `rounds ${rounds(rates.json)}; plus ${jsonPrepUs.toFixed(2)} µs/row building the JSON lines (one thread)`,
    },
    { insert: 'RowBinary / JSON', 'rows/s': (best(rates.rowbinary) / best(rates.json)).toFixed(2), note: '' },
  ])
}

await main()
