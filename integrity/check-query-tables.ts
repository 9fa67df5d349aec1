import { randomBytes } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
import { accessLogDdl } from '../store/ddl.js'
import type { Store } from '../store/store.js'
import { VerificationError } from './errors.js'
import { NO_CACHES } from './no-caches.js'
import type { Finding } from './report.js'

/** One table or view as system.tables and system.columns describe it, database names taken out. */
interface Definition {
  engine: string
  create: string
  asSelect: string
  /** `name type [default]`, in position order. */
  columns: string[]
}

interface TableRow {
  name: string
  engine: string
  create_table_query: string
  as_select: string
}

interface ColumnRow {
  table: string
  name: string
  type: string
  default_kind: string
  default_expression: string
  compression_codec: string
}

/**
 * Every table and view readtrail creates, as the engine itself prints them
 * after running store/ddl.ts in a scratch database: the expected form needs
 * no copy of the DDL kept in step, and ClickHouse's own formatting is what
 * both sides are compared in. Built once per connection.
 */
const EXPECTED = new WeakMap<ClickHouseClient, Promise<Map<string, Definition>>>()

function expectedDefinitions(store: Store): Promise<Map<string, Definition>> {
  let expected = EXPECTED.get(store.client)
  if (!expected) {
    expected = buildExpected(store)
    // A failure is not cached: the next run tries again.
    expected.catch(() => EXPECTED.delete(store.client))
    EXPECTED.set(store.client, expected)
  }
  return expected
}

async function buildExpected(store: Store): Promise<Map<string, Definition>> {
  const scratch = `readtrail_expected_${randomBytes(6).toString('hex')}`
  try {
    for (const statement of accessLogDdl(scratch)) await store.client.command({ query: statement })
    return await readDefinitions(store, scratch)
  } catch (cause) {
    throw new VerificationError('VERIFY_FAILED', `check-query-tables: creating the expected schema in a scratch database failed`, { cause })
  } finally {
    await store.client.command({ query: `DROP DATABASE IF EXISTS ${scratch} SYNC` }).catch(() => {})
  }
}

/** Database names out, white space collapsed: what stays is engine, columns, keys, indexes, settings and SELECTs. */
function normalise(text: string, database: string): string {
  return text
    .replace(new RegExp(`(?<![\\w\`])\`?${database}\`?\\.`, 'g'), '<db>.')
    .replace(/\s+/g, ' ')
    .trim()
}

async function readDefinitions(store: Store, database: string): Promise<Map<string, Definition>> {
  const [tables, columns] = await Promise.all([
    store.queryRows<TableRow>('SELECT name, engine, create_table_query, as_select FROM system.tables WHERE database = {db:String}', { db: database }, NO_CACHES),
    store.queryRows<ColumnRow>(
      'SELECT table, name, type, default_kind, default_expression, compression_codec FROM system.columns WHERE database = {db:String} ORDER BY table, position',
      { db: database },
      NO_CACHES,
    ),
  ])
  const definitions = new Map<string, Definition>()
  for (const t of tables) {
    definitions.set(t.name, { engine: t.engine, create: normalise(t.create_table_query, database), asSelect: normalise(t.as_select, database), columns: [] })
  }
  for (const c of columns) {
    const extra = [c.default_kind ? `${c.default_kind} ${normalise(c.default_expression, database)}` : '', c.compression_codec].filter((x) => x !== '').join(' ')
    definitions.get(c.table)?.columns.push(`${c.name} ${c.type}${extra ? ` ${extra}` : ''}`)
  }
  return definitions
}

/** Where two texts part, with a little context from each: a detail a reader can act on. */
function firstDifference(expected: string, found: string): string {
  let i = 0
  while (i < expected.length && i < found.length && expected[i] === found[i]) i++
  const from = Math.max(0, i - 30)
  const cut = (s: string) => JSON.stringify(`${from > 0 ? '…' : ''}${s.slice(from, i + 90)}${s.length > i + 90 ? '…' : ''}`)
  return `readtrail creates ${cut(expected)}, found ${cut(found)}`
}

function compare(want: Definition, have: Definition | undefined): string[] {
  if (!have) return ['is missing']
  const problems: string[] = []
  if (have.engine !== want.engine) problems.push(`has engine ${have.engine}, readtrail creates ${want.engine}`)
  const missing = want.columns.filter((c) => !have.columns.includes(c))
  const unexpected = have.columns.filter((c) => !want.columns.includes(c))
  if (missing.length > 0 || unexpected.length > 0) {
    problems.push(`columns differ: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`)
  } else if (have.columns.join() !== want.columns.join()) problems.push('columns are in another order')
  if (have.asSelect !== want.asSelect) problems.push(`its SELECT differs: ${firstDifference(want.asSelect, have.asSelect)}`)
  else if (have.create !== want.create) problems.push(`its definition differs: ${firstDifference(want.create, have.create)}`)
  return problems
}

/**
 * Materialized views anywhere on the server that write into one of the
 * store's tables without being one readtrail created: an extra feed can add
 * forged rows to a serving table on every insert.
 */
async function extraFeeds(store: Store, expected: Map<string, Definition>): Promise<Finding[]> {
  const rows = await store.queryRows<{ database: string; name: string; create_table_query: string }>(
    "SELECT database, name, create_table_query FROM system.tables WHERE engine = 'MaterializedView' AND NOT (database = {db:String} AND has({known:Array(String)}, name))",
    { db: store.database, known: [...expected.entries()].filter(([, d]) => d.engine === 'MaterializedView').map(([n]) => n) },
    NO_CACHES,
  )
  const findings: Finding[] = []
  for (const r of rows) {
    const target = new RegExp(`\\bTO \`?${store.database}\`?\\.\`?(\\w+)\`?`).exec(r.create_table_query.replace(/\s+/g, ' '))
    const fed = target?.[1]
    if (r.database === store.database || (fed && expected.has(fed))) {
      findings.push({
        chain_id: `(${fed ?? r.name})`,
        seq: 0,
        kind: 'query_table_altered',
        detail: `${fed ?? r.name}: fed by ${JSON.stringify(`${r.database}.${r.name}`)}, a materialized view readtrail did not create: ${JSON.stringify(normalise(r.create_table_query, store.database).slice(0, 200))}`,
      })
    }
  }
  return findings
}

/**
 * Verify's check of the tables the saved queries answer from, and of the
 * views that feed them: each must have the engine, columns and definition
 * store/ddl.ts gives it. A view target replaced by a View or by a
 * Merge table, or a materialized view whose SELECT filters out a reader
 * answers differently while every row check can still pass. One finding per
 * table or view, at `(name)` seq 0: it is not in any chain.
 */
export async function checkQueryTables(store: Store): Promise<Finding[]> {
  const expected = await expectedDefinitions(store)
  const actual = await readDefinitions(store, store.database)
  const findings: Finding[] = []
  for (const [name, want] of expected) {
    const problems = compare(want, actual.get(name))
    if (problems.length > 0) findings.push({ chain_id: `(${name})`, seq: 0, kind: 'query_table_altered', detail: `${name}: ${problems.join('; ')}` })
  }
  return [...findings, ...(await extraFeeds(store, expected))]
}
