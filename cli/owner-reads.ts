import { z } from 'zod'
import { ReadtrailError } from '../common/errors.js'
import { ACCESS_LOG_COLUMNS, HASH_COLUMN } from '../store/access-log-columns.js'
import { quoteIdent } from '../store/ddl.js'

/**
 * The raw reads `verify --independent` may ask the store's owner for. The
 * independent mode must not take its facts from whoever holds the store: it
 * fetches rows (RowBinary bytes, or plain rows for the chain list and
 * producer sequences) and re-hashes and judges them in the verifying process.
 * The owner runs only these statements, with their parameters bound and
 * validated, never SQL text it was sent: the socket is a boundary.
 *
 * The texts are those integrity/independent-scan.ts, collect-independent.ts,
 * chain-offsets.ts and producer-since.ts send (compared with whitespace collapsed); a change
 * there that is not made here fails loudly with USAGE "not a read the owner
 * serves", never silently.
 */

export type OwnerReadFormat = 'RowBinary' | 'JSONEachRow'

interface OwnerRead {
  name: string
  format: OwnerReadFormat
  params: z.ZodType<Record<string, unknown>>
  sql(log: string): string
}

const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const chainId = z.string().min(1).max(1024)

const SELECT_COLUMNS = [...ACCESS_LOG_COLUMNS.map((c) => c.name), HASH_COLUMN.name].join(', ')

const OWNER_READS: readonly OwnerRead[] = [
  {
    name: 'chain-list',
    format: 'JSONEachRow',
    params: z.object({}).strict(),
    sql: (log) => `SELECT chain_id, max(seq) AS max_seq FROM ${log} GROUP BY chain_id ORDER BY chain_id`,
  },
  {
    name: 'segment-open',
    format: 'RowBinary',
    params: z.object({ c: chainId, lo: seq }).strict(),
    sql: (log) => `SELECT ${SELECT_COLUMNS} FROM ${log} WHERE chain_id = {c:String} AND seq >= {lo:UInt64} ORDER BY seq, hash FORMAT RowBinary`,
  },
  {
    name: 'segment-bounded',
    format: 'RowBinary',
    params: z.object({ c: chainId, lo: seq, hi: seq }).strict(),
    sql: (log) => `SELECT ${SELECT_COLUMNS} FROM ${log} WHERE chain_id = {c:String} AND seq >= {lo:UInt64} AND seq <= {hi:UInt64} ORDER BY seq, hash FORMAT RowBinary`,
  },
  {
    name: 'offsets-open',
    format: 'RowBinary',
    params: z.object({ c: chainId, lo: seq }).strict(),
    sql: (log) => `SELECT seq, kafka_offset FROM ${log} WHERE chain_id = {c:String} AND seq >= {lo:UInt64} ORDER BY seq, kafka_offset FORMAT RowBinary`,
  },
  {
    name: 'offsets-bounded',
    format: 'RowBinary',
    params: z.object({ c: chainId, lo: seq, hi: seq }).strict(),
    sql: (log) => `SELECT seq, kafka_offset FROM ${log} WHERE chain_id = {c:String} AND seq >= {lo:UInt64} AND seq <= {hi:UInt64} ORDER BY seq, kafka_offset FORMAT RowBinary`,
  },
  {
    name: 'find-events',
    format: 'JSONEachRow',
    params: z.object({ chain_id: chainId, ids: z.array(z.string().max(64)).max(100_000) }).strict(),
    sql: (log) => `SELECT toString(event_id) AS id, seq FROM ${log} WHERE chain_id = {chain_id:String} AND event_id IN {ids:Array(UUID)} ORDER BY seq`,
  },
  {
    name: 'producer-scan',
    format: 'RowBinary',
    params: z.object({}).strict(),
    sql: (log) => `SELECT producer_id, producer_seq, chain_id, seq, toUnixTimestamp64Micro(ingested_at) FROM ${log} ORDER BY producer_id, producer_seq FORMAT RowBinary`,
  },
  {
    name: 'producers-since',
    format: 'JSONEachRow',
    params: z.object({ ids: z.array(z.string().max(1024)).max(10_000_000), lowest: seq }).strict(),
    sql: (log) =>
      `SELECT producer_id, producer_seq, chain_id, seq, toUnixTimestamp64Micro(ingested_at) AS ingested_at_us FROM ${log} ` +
      'WHERE producer_id IN {ids:Array(String)} AND producer_seq > {lowest:UInt64} ORDER BY producer_id, producer_seq',
  },
]

/** One statement as the tokens ClickHouse parses: indentation and line breaks are not part of what is allowed. */
export function normalizeSql(sql: string): string {
  return sql.replace(/\s+/g, ' ').trim()
}

/** A read the owner serves, with its parameters validated; throws USAGE for anything else. */
export function resolveOwnerRead(
  database: string,
  query: unknown,
  params: unknown,
  format: OwnerReadFormat,
): { name: string; sql: string; params: Record<string, unknown>; format: OwnerReadFormat } {
  if (typeof query !== 'string' || query.length > 16_384) throw new ReadtrailError('USAGE', 'not a read the owner serves')
  const log = `${quoteIdent(database)}.${quoteIdent('access_log')}`
  const asked = normalizeSql(query)
  const read = OWNER_READS.find((r) => r.format === format && normalizeSql(r.sql(log)) === asked)
  if (!read) throw new ReadtrailError('USAGE', 'not a read the owner serves (independent verification asks only for fixed row reads)', { details: { format } })
  const parsed = read.params.safeParse(params ?? {})
  if (!parsed.success) throw new ReadtrailError('USAGE', `parameters of the owner read ${read.name} are invalid`, { details: { read: read.name } })
  return { name: read.name, sql: read.sql(log), params: parsed.data, format }
}
