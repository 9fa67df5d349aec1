import { HASH_SQL } from '../store/access-log-columns.js'
import { PRINCIPAL_VIEW_COLUMNS, RECORD_VIEW_COLUMNS, principalDaysSelect, principalHoursSelect, type PRINCIPAL_DAYS_COLUMNS, type PRINCIPAL_HOURS_COLUMNS } from '../store/ddl.js'
import type { Store } from '../store/store.js'
import { chainOffsetsInDb, findStoredEventsByChain, type ChainOffsets } from './chain-offsets.js'
import type { FactWindow } from './classify-window.js'
import { assembleFacts, foundEventsFacts, mergeRanges, suspectRange, type Facts, type FactsRequest } from './facts.js'
import { NO_CACHES } from './no-caches.js'
import { completeThrough } from './producer-gaps.js'
import { producerBreaksSince, type ProducerFacts } from './producer-since.js'
import type { Finding } from './report.js'
import type { ChainScan, CheckpointRow, ProducerBreak, RowFacts } from './row-facts.js'


const ZERO_HASH_SQL = `toFixedString(unhex(repeat('00', 32)), 32)`

/**
 * The saved queries read two materialised-view tables, not access_log. Their
 * rows carry no hash of their own, so an attacker who deletes or edits a view
 * row hides a principal from those queries while the chain stays intact: each
 * view row must be proved to be exactly what access_log implies.
 */
export const VIEW_CHECKS = Object.freeze([
  {
    table: 'access_by_principal',
    /** How access_log rows become view rows: one each. */
    expand: '',
    columns: PRINCIPAL_VIEW_COLUMNS,
  },
  {
    table: 'record_access',
    /** One row per element of record_ids, repeats included, as the view's arrayJoin makes them. */
    expand: 'ARRAY JOIN record_ids AS record_id',
    columns: RECORD_VIEW_COLUMNS,
  },
] as const)

type ViewCheck = (typeof VIEW_CHECKS)[number]

/**
 * (chain_id, seq) keys where the view's rows are not the multiset access_log
 * implies, with `missing` (expected rows the view lacks) and `extra` (view
 * rows nothing in access_log implies) counted per distinct row.
 *
 * Each row, on both sides, is reduced to SHA-256 of its RowBinary encoding,
 * as the chain hash is: NULL stays apart from '' and array elements from
 * their concatenation (test/integration/verify-views.test.ts). Not
 * `cityHash64(col, ...)`: it returns NULL when any argument is NULL, and view
 * rows are attacker-controlled while cityHash64 has known seed-independent
 * collisions (a keyed sipHash128 over a tuple measured 3x slower here).
 * Counting per (chain_id, seq, digest) compares multisets exactly: a deleted,
 * duplicated, forged or edited row never cancels out. Cost: linear in view
 * rows (bench/README.md).
 */
function viewCheckSql(store: Store, view: ViewCheck): string {
  const digest = `SHA256(formatRow('RowBinary', ${view.columns.join(', ')}))`
  return `SELECT chain_id, seq, countIf(expected > found) AS missing, countIf(found > expected) AS extra
FROM (
  SELECT chain_id, seq, row_digest, countIf(from_log) AS expected, countIf(NOT from_log) AS found
  FROM (
    SELECT chain_id, seq, ${digest} AS row_digest, toUInt8(1) AS from_log FROM ${store.table('access_log')} ${view.expand}
    UNION ALL
    SELECT chain_id, seq, ${digest} AS row_digest, toUInt8(0) AS from_log FROM ${store.table(view.table)}
  )
  GROUP BY chain_id, seq, row_digest
  HAVING expected != found
)
GROUP BY chain_id, seq
ORDER BY chain_id, seq
LIMIT {limit:UInt32}`
}

/**
 * Collects verification facts with ClickHouse doing the hashing: fast, and
 * as trustworthy as the engine that answers (see collect-independent.ts for
 * the mode that trusts nothing it computes). Per chain, one query re-hashes
 * every row and compares it with its predecessor in (seq, hash) order; only
 * the rows that fail, and the few around them, come back.
 */
export async function collectInDb(store: Store, request: FactsRequest): Promise<Facts> {
  if (request.find_events) return foundEventsFacts(await findStoredEventsByChain(store, 'in-db', request.find_events))
  const log = store.table('access_log')
  const from = (chainId: string) => request.from_seq?.[chainId] ?? 0
  const listed = await store.queryRows<{ chain_id: string }>(`SELECT DISTINCT chain_id FROM ${log} ORDER BY chain_id`, {}, NO_CACHES)
  const chainIds = listed.map((r) => r.chain_id)

  const chains: ChainScan[] = []
  const windows: FactWindow[] = []
  const checkpointRows: CheckpointRow[] = []
  const chainOffsets: ChainOffsets[] = []
  let suspectsTruncated = false
  for (const chainId of chainIds) {
    const params = { chain_id: chainId, from: from(chainId) }
    if (request.offsets) {
      const offsets = await chainOffsetsInDb(store, chainId, from(chainId), request.maxSuspects)
      if (offsets) chainOffsets.push(offsets)
    }
    const [summary] = await store.queryRows<{ rows: number; first_seq: number; last_seq: number; head_hash: string }>(
      `SELECT count() AS rows, min(seq) AS first_seq, max(seq) AS last_seq, lower(hex(argMax(hash, seq))) AS head_hash
       FROM ${log} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64}`,
      params,
      NO_CACHES,
    )
    if (summary && Number(summary.rows) > 0) {
      chains.push({ chain_id: chainId, rows: Number(summary.rows), first_seq: Number(summary.first_seq), last_seq: Number(summary.last_seq), head_hash: summary.head_hash })
    }
    // The first row of an incremental range is the anchor: it is compared
    // with its signed checkpoint, not with a predecessor this run does not read.
    const suspects = await store.queryRows<{ seq: number; prev_seq: number }>(
      `SELECT seq, prev_seq FROM (
         SELECT seq, hash != ${HASH_SQL} AS bad_hash,
                prev_hash = lagInFrame(hash, 1, ${ZERO_HASH_SQL}) OVER w AS link_ok,
                lagInFrame(seq, 1, toUInt64(0)) OVER w AS prev_seq,
                row_number() OVER w AS position
         FROM ${log} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64}
         WINDOW w AS (ORDER BY seq ASC, hash ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
       )
       WHERE bad_hash OR ((NOT link_ok OR seq != prev_seq + 1) AND ({from:UInt64} = 0 OR position > 1))
       ORDER BY seq LIMIT {limit:UInt32}`,
      { ...params, limit: request.maxSuspects + 1 },
      NO_CACHES,
    )
    suspectsTruncated ||= suspects.length > request.maxSuspects
    const ranges = mergeRanges(suspects.slice(0, request.maxSuspects).map((s) => suspectRange(Number(s.seq), Number(s.prev_seq), from(chainId))))
    for (const range of ranges) windows.push({ chain_id: chainId, ...range, rows: await windowRows(store, chainId, range) })

    const seqs = request.checkpoint_seqs[chainId] ?? []
    if (seqs.length > 0) {
      const rows = await store.queryRows<{ seq: number; hash_hex: string; self_ok: number }>(
        `SELECT seq, lower(hex(hash)) AS hash_hex, hash = ${HASH_SQL} AS self_ok FROM ${log}
         WHERE chain_id = {chain_id:String} AND seq IN {seqs:Array(UInt64)} ORDER BY seq, hash`,
        { chain_id: chainId, seqs },
        NO_CACHES,
      )
      for (const r of rows) checkpointRows.push({ chain_id: chainId, seq: Number(r.seq), hash: r.hash_hex, self_ok: Boolean(Number(r.self_ok)) })
    }
  }

  const producers = request.producer_through
    ? await producerBreaksSince(store, request, await producersOfNewRows(store, chainIds, from))
    : await producerBreaksAll(store, request.maxSuspects)
  const viewFindings = request.views && !request.from_seq ? await checkViews(store, request.maxSuspects) : []
  const warnings: string[] = []
  if (request.views && request.from_seq) warnings.push('query views are checked by full runs only (run verify without --since-checkpoint)')
  return assembleFacts({
    chains,
    windows,
    suspectsTruncated,
    checkpointRows,
    producers,
    viewFindings,
    viewsChecked: request.views && !request.from_seq,
    warnings,
    ...(request.offsets ? { chainOffsets } : {}),
  })
}

async function windowRows(store: Store, chainId: string, range: { lo: number; hi: number }): Promise<RowFacts[]> {
  // Aliases must not shadow the columns HASH_SQL reads: ClickHouse resolves
  // an alias anywhere in the SELECT, and the hash would cover the hex text.
  const rows = await store.queryRows<{ seq: number; prev_hex: string; hash_hex: string; self_ok: number; event: string }>(
    `SELECT seq, lower(hex(prev_hash)) AS prev_hex, lower(hex(hash)) AS hash_hex, hash = ${HASH_SQL} AS self_ok, toString(event_id) AS event
     FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq BETWEEN {lo:UInt64} AND {hi:UInt64}
     ORDER BY seq, hash`,
    { chain_id: chainId, lo: range.lo, hi: range.hi },
    NO_CACHES,
  )
  return rows.map((r) => ({ seq: Number(r.seq), prev_hash: r.prev_hex, hash: r.hash_hex, self_ok: Boolean(Number(r.self_ok)), event_id: r.event }))
}

/** Every producer's whole sequence, ordered by ClickHouse, each break found by a window function. */
async function producerBreaksAll(store: Store, limit: number): Promise<ProducerFacts> {
  const log = store.table('access_log')
  const rows = await store.queryRows<ProducerBreak>(
    `SELECT producer_id, producer_seq, prev_producer_seq, chain_id, seq, ingested_at_us FROM (
       SELECT producer_id, producer_seq, lagInFrame(producer_seq, 1, toUInt64(0)) OVER w AS prev_producer_seq,
              chain_id, seq, toUnixTimestamp64Micro(ingested_at) AS ingested_at_us
       FROM ${log}
       WINDOW w AS (PARTITION BY producer_id ORDER BY producer_seq ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
     )
     WHERE producer_seq != prev_producer_seq + 1
     ORDER BY producer_id, producer_seq LIMIT {limit:UInt32}`,
    { limit: limit + 1 },
    NO_CACHES,
  )
  const maxima = await store.queryRows<{ producer_id: string; max_seq: number }>(
    `SELECT producer_id, max(producer_seq) AS max_seq FROM ${log} GROUP BY producer_id`,
    {},
    NO_CACHES,
  )
  const breaks = rows.slice(0, limit).map(numericBreak)
  const last = Object.fromEntries(maxima.map((m) => [m.producer_id, Number(m.max_seq)]))
  return { breaks, truncated: rows.length > limit, checked: maxima.length, through: completeThrough(breaks, last) }
}

/** Producers with events in the rows an incremental run checks. */
async function producersOfNewRows(store: Store, chainIds: readonly string[], from: (chainId: string) => number): Promise<string[]> {
  const producers = new Set<string>()
  for (const chainId of chainIds) {
    const rows = await store.queryRows<{ producer_id: string }>(
      `SELECT DISTINCT producer_id FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64}`,
      { chain_id: chainId, from: from(chainId) },
      NO_CACHES,
    )
    for (const r of rows) producers.add(r.producer_id)
  }
  return [...producers]
}

function numericBreak(b: ProducerBreak): ProducerBreak {
  return {
    producer_id: b.producer_id,
    producer_seq: Number(b.producer_seq),
    prev_producer_seq: Number(b.prev_producer_seq),
    chain_id: b.chain_id,
    seq: Number(b.seq),
    ingested_at_us: Number(b.ingested_at_us),
  }
}

/** One more than `limit` per view, so the report can say when its list was cut. */
async function checkViews(store: Store, limit: number): Promise<Finding[]> {
  const findings: Finding[] = []
  for (const view of VIEW_CHECKS) {
    const rows = await store.queryRows<{ chain_id: string; seq: number; missing: number; extra: number }>(viewCheckSql(store, view), { limit: limit + 1 }, NO_CACHES)
    for (const r of rows) {
      const missing = Number(r.missing) > 0
      const extra = Number(r.extra) > 0
      const what = missing && extra ? 'differs from access_log' : missing ? 'missing row' : 'extra row'
      findings.push({ chain_id: r.chain_id, seq: Number(r.seq), kind: 'view_mismatch', detail: `${view.table}: ${what}` })
    }
  }
  return [...findings, ...(await checkRollups(store, limit))]
}

type Side = 'log' | 'rollup'
type Combine = 'sum' | 'min' | 'max'
type RollupRow = Record<string, string | number>

/**
 * A rollup the saved queries read, as a key and how each partial aggregate
 * combines. The rows of one key are not an answer on their own: ClickHouse
 * merges them whenever it likes, so only their combination per key is
 * compared, and any split of a key's rows that combines to what access_log
 * implies is as good as the merged row.
 */
interface RollupCheck<Column extends string> {
  table: string
  key: readonly Column[]
  // Every other column, each once: a column added to the rollup fails to compile until it is compared too.
  aggregates: Readonly<Record<string, Combine>>
  /** The rollup's own SELECT over access_log rows. */
  select: (source: string, where: string) => string
  /** Key columns as the finding's detail needs them (SQL select items). */
  keyOut: string
  /** "hour … principal …": where in the rollup the mismatch is. */
  where: (row: RollupRow) => string
  /** One side's figures for the detail. */
  figures: (row: RollupRow, side: Side) => string
  /** What the figures leave out but the comparison covers. */
  unshown?: string
}

type HoursColumn = (typeof PRINCIPAL_HOURS_COLUMNS)[number]['name']
type HoursKey = 'hour' | 'principal_id' | 'chain_id'
type DaysColumn = (typeof PRINCIPAL_DAYS_COLUMNS)[number]['name']
type DaysKey = 'day' | 'principal_id' | 'db_name' | 'table_name' | 'chain_id'

const hoursAggregates = { reads: 'sum', rows_read: 'sum', first_seq: 'min', last_seq: 'max' } as const satisfies Record<Exclude<HoursColumn, HoursKey>, Combine>
const daysAggregates = {
  events: 'sum',
  reads: 'sum',
  rows_read: 'sum',
  unpurposed_reads: 'sum',
  unpurposed_rows: 'sum',
  first_at: 'min',
  last_at: 'max',
  first_seq: 'min',
  last_seq: 'max',
} as const satisfies Record<Exclude<DaysColumn, DaysKey>, Combine>

/** principal_hours, which bulk-extraction reads to pick its suspects. */
export const ROLLUP_CHECK = Object.freeze({
  table: 'principal_hours',
  key: ['hour', 'principal_id', 'chain_id'],
  aggregates: hoursAggregates,
  select: principalHoursSelect,
  keyOut: 'principal_id, toUnixTimestamp(hour) AS hour_s',
  where: (r) => {
    // A forged key need not start on the hour: then it is shown to the second.
    const iso = new Date(Number(r['hour_s']) * 1000).toISOString()
    const hour = iso.endsWith(':00:00.000Z') ? `${iso.slice(0, 16)}Z` : iso
    // The principal may come from a forged rollup row: quoted, so it cannot
    // pass for more of the detail or break the report's lines.
    return `hour ${hour} principal ${JSON.stringify(r['principal_id'])}`
  },
  figures: (r, p) => `reads=${r[`${p}_reads_text`]}, rows=${r[`${p}_rows_read_text`]}, seq ${r[`${p}_first_seq_text`]}..${r[`${p}_last_seq_text`]}`,
} satisfies RollupCheck<HoursColumn>)

/** principal_days, which first-time access, top readers and reads without purpose read. */
export const DAYS_ROLLUP_CHECK = Object.freeze({
  table: 'principal_days',
  key: ['day', 'principal_id', 'db_name', 'table_name', 'chain_id'],
  aggregates: daysAggregates,
  select: principalDaysSelect,
  keyOut: 'principal_id, db_name, table_name, toString(day) AS day_text',
  where: (r) => `day ${r['day_text']} principal ${JSON.stringify(r['principal_id'])} table ${JSON.stringify(`${r['db_name']}.${r['table_name']}`)}`,
  figures: (r, p) => `reads=${r[`${p}_reads_text`]}, rows=${r[`${p}_rows_read_text`]}, without purpose=${r[`${p}_unpurposed_reads_text`]}`,
  unshown: ' (or its first/last read or seq range differ)',
} satisfies RollupCheck<DaysColumn>)

const ROLLUP_CHECKS: readonly RollupCheck<string>[] = [ROLLUP_CHECK, DAYS_ROLLUP_CHECK]

/**
 * Keys where the rollup, combined per key, is not its SELECT over
 * access_log; with both sides' figures. A key only one side has is a
 * mismatch (`*_n` counts its rows per side) even when the other side's
 * figures would read as zeros.
 *
 * Sums are taken as UInt128: rollup rows are attacker-controlled, and two
 * forged UInt64 partials that wrap around would otherwise add up to the
 * right total while a reader of single rows sees a huge one. Times compare
 * as integer microseconds.
 *
 * `seq` is the newest event the key must cover, access_log's max(seq) for
 * it: every event the rollup miscounts lies at or before it in the chain,
 * and a crash that left the rollup short of a chain's tail is reported
 * at the tail. A key access_log has no event for is reported at the
 * last_seq the rollup claims for it, as a forged view row is at its own seq.
 * Figures come back as decimal text: a forged UInt128 sum does not fit a
 * JSON number. Cost: linear in access_log rows plus rollup rows, one GROUP
 * BY over both.
 */
function rollupCheckSql(store: Store, check: RollupCheck<string>): string {
  const key = check.key.join(', ')
  const aggregates = Object.entries(check.aggregates)
  const value = (name: string, fn: Combine) =>
    fn === 'sum' ? `toUInt128(${name})` : name.endsWith('_at') ? `toUInt64(toUnixTimestamp64Micro(${name}))` : `toUInt64(${name})`
  const side = (from: string, fromLog: number) =>
    `SELECT ${key}, ${aggregates.map(([name, fn]) => `${value(name, fn)} AS v_${name}`).join(', ')}, toUInt8(${fromLog}) AS from_log FROM ${from}`
  const figures = (prefix: Side, cond: string) =>
    [`countIf(${cond}) AS ${prefix}_n`, ...aggregates.map(([name, fn]) => `${fn}If(v_${name}, ${cond}) AS ${prefix}_${name}`)].join(', ')
  const differs = aggregates.map(([name]) => `log_${name} != rollup_${name}`).join(' OR ')
  const texts = (['log', 'rollup'] as const).flatMap((p) => [`${p}_n`, ...aggregates.map(([name]) => `toString(${p}_${name}) AS ${p}_${name}_text`)])
  return `SELECT chain_id, ${check.keyOut}, if(log_n > 0, log_last_seq, rollup_last_seq) AS seq, ${texts.join(', ')}
FROM (
  SELECT ${key}, ${figures('log', 'from_log = 1')}, ${figures('rollup', 'from_log = 0')}
  FROM (
    ${side(`(${check.select(store.table('access_log'), '')})`, 1)}
    UNION ALL
    ${side(store.table(check.table), 0)}
  )
  GROUP BY ${key}
  HAVING log_n = 0 OR rollup_n = 0 OR ${differs}
)
ORDER BY chain_id, seq, ${key}
LIMIT {limit:UInt32}`
}

/** One more than `limit` per rollup, as for the views. */
async function checkRollups(store: Store, limit: number): Promise<Finding[]> {
  const findings: Finding[] = []
  for (const check of ROLLUP_CHECKS) {
    for (const r of await store.queryRows<RollupRow>(rollupCheckSql(store, check), { limit: limit + 1 }, NO_CACHES)) {
      const says = (p: Side) => (Number(r[`${p}_n`]) === 0 ? `${p} has ${p === 'log' ? 'no event' : 'no row'}` : `${p} says ${check.figures(r, p)}`)
      findings.push({ chain_id: String(r['chain_id']), seq: Number(r['seq']), kind: 'rollup_mismatch', detail: `${check.table}: ${check.where(r)}: ${says('log')}; ${says('rollup')}${check.unshown ?? ''}` })
    }
  }
  return findings
}
