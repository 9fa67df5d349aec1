/**
 * Saved queries on a large log: generates N events (default 2M, 10 record
 * ids each, so 20M record_access rows) with ClickHouse itself, then times
 * records-touched-by-principal and who-touched-record (median of several
 * runs). The generated rows are not a hash chain; this measures query cost.
 *
 *   npx tsx bench/queries.ts [--events=2000000] [--runs=5]
 */
import { recordsTouchedByPrincipal } from '../queries/records-touched-by-principal.js'
import { runSavedQuery } from '../queries/saved-query.js'
import { whoTouchedRecord } from '../queries/who-touched-record.js'
import { ACCESS_LOG_COLUMNS, HASH_COLUMN } from '../store/access-log-columns.js'
import type { Store } from '../store/store.js'
import { machineLine, median, numberOption, openBenchStore, printTable } from './bench-support.js'

const EVENTS = numberOption('events', 2_000_000)
const RUNS = numberOption('runs', 5)
const CHUNK = 1_000_000
const START_US = Date.UTC(2026, 10, 1) * 1000
const SPACING_US = 30_000

/** One SQL expression per access_log column, in table order, over `number`. */
const GENERATED: Record<string, string> = {
  prev_hash: "toFixedString(unhex(repeat('00', 32)), 32)",
  chain_id: "concat('bench/', toString(number % 3))",
  seq: 'intDiv(number, 3) + 1',
  kafka_offset: 'intDiv(number, 3)',
  ingested_at: `fromUnixTimestamp64Micro(toInt64(${START_US} + number * ${SPACING_US} + 5000), 'UTC')`,
  schema_version: '1',
  event_id: 'generateUUIDv4(number)',
  read_id: 'generateUUIDv4(number + 1)',
  part_index: '0',
  part_count: '1',
  occurred_at: `fromUnixTimestamp64Micro(toInt64(${START_US} + number * ${SPACING_US}), 'UTC')`,
  // One account in 50 events is the scraper; the rest spread over 1,000 staff.
  principal_id: "if(number % 50 = 0, 'clerk.marta', concat('user-', toString(cityHash64(number) % 1000)))",
  principal_type: "'user'",
  on_behalf_of: 'NULL',
  session_hash: 'NULL',
  client_ip: "toIPv6(concat('10.0.', toString(number % 200), '.', toString(number % 250)))",
  service: "'registry-api'",
  environment: "'bench'",
  action: "'read'",
  db_name: "'registry'",
  table_name: "['applicants', 'patients', 'owners', 'addresses', 'visits'][number % 5 + 1]",
  columns: "['id', 'full_name', 'phone']",
  record_ids: 'arrayMap(i -> toString(cityHash64(number, i) % 5000000), range(10))',
  record_ids_complete: 'true',
  row_count: '10',
  query_fingerprint: "'SELECT id, full_name, phone FROM t WHERE id IN (?+)'",
  purpose: 'NULL',
  trace_id: 'NULL',
  outcome: "'success'",
  producer_id: "'bench'",
  producer_seq: 'number + 1',
  hash: "toFixedString(unhex(repeat('00', 32)), 32)",
}

async function generate(store: Store): Promise<number> {
  const columns = [...ACCESS_LOG_COLUMNS.map((c) => c.name), HASH_COLUMN.name]
  const select = columns.map((c) => `${GENERATED[c]!} AS ${c}`).join(',\n  ')
  const t0 = performance.now()
  for (let from = 0; from < EVENTS; from += CHUNK) {
    const count = Math.min(CHUNK, EVENTS - from)
    await store.client.command({
      query: `INSERT INTO ${store.table('access_log')} SELECT ${select} FROM numbers(${from}, ${count})`,
    })
    process.stdout.write(`  generated ${(from + count).toLocaleString('en-US')} events\n`)
  }
  return performance.now() - t0
}

async function time<T>(fn: () => Promise<T[]>): Promise<{ ms: number; rows: number }> {
  const times: number[] = []
  let rows = 0
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now()
    rows = (await fn()).length
    times.push(performance.now() - t)
  }
  return { ms: median(times), rows }
}

async function main(): Promise<void> {
  console.log(`bench/queries — ${machineLine()}`)
  const bench = openBenchStore()
  try {
    const store = await bench.freshDatabase('queries')
    const loadMs = await generate(store)
    const [sizes] = await store.queryRows<{ events: number; record_rows: number }>(
      `SELECT (SELECT count() FROM ${store.table('access_log')}) AS events, (SELECT count() FROM ${store.table('record_access')}) AS record_rows`,
    )
    console.log(`${Number(sizes!.events).toLocaleString('en-US')} events, ${Number(sizes!.record_rows).toLocaleString('en-US')} record_access rows, generated in ${(loadMs / 1000).toFixed(1)} s`)
    const [probe] = await store.queryRows<{ record_id: string }>(
      `SELECT record_id FROM ${store.table('record_access')} WHERE table_name = 'patients' LIMIT 1 OFFSET 123456`,
    )
    const from = new Date(START_US / 1000 + 3_600_000)
    const to = new Date(START_US / 1000 + 2 * 3_600_000)
    const cases: [string, () => Promise<unknown[]>][] = [
      ['records-touched-by-principal, typical account (user-17), all time', () => runSavedQuery(store, recordsTouchedByPrincipal, { principal: 'user-17' })],
      ['records-touched-by-principal, scraper (clerk.marta), all time', () => runSavedQuery(store, recordsTouchedByPrincipal, { principal: 'clerk.marta' })],
      ['records-touched-by-principal, scraper, one hour', () => runSavedQuery(store, recordsTouchedByPrincipal, { principal: 'clerk.marta', from, to })],
      ['who-touched-record, one patient, all time', () => runSavedQuery(store, whoTouchedRecord, { table: 'patients', record: probe!.record_id })],
      ['who-touched-record, unknown record', () => runSavedQuery(store, whoTouchedRecord, { table: 'patients', record: 'no-such-id' })],
    ]
    const rows: Record<string, string | number>[] = []
    for (const [label, run] of cases) {
      const r = await time(run)
      rows.push({ query: label, 'median ms': r.ms, 'rows returned': r.rows })
    }
    printTable(`Saved queries on ${EVENTS.toLocaleString('en-US')} events (median of ${RUNS} runs, embedded engine)`, rows)
  } finally {
    await bench.close()
  }
}

await main()
