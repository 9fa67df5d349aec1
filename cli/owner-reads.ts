import { z } from 'zod'
import { ReadtrailError } from '../common/errors.js'
import {
  chainListSql,
  findEventsSql,
  offsetsBoundedSql,
  offsetsOpenSql,
  producerScanSql,
  producersSinceSql,
  segmentBoundedSql,
  segmentOpenSql,
} from '../integrity/owner-read-sql.js'
import { quoteIdent } from '../store/ddl.js'

/**
 * The raw reads `verify --independent` may ask the store's owner for. The
 * independent mode must not take its facts from whoever holds the store: it
 * fetches rows (RowBinary bytes, or plain rows for the chain list and
 * producer sequences) and re-hashes and judges them in the verifying process.
 * The owner runs only these statements, with their parameters bound and
 * validated, never SQL text it was sent: the socket is a boundary.
 *
 * The statements are built by integrity/owner-read-sql.ts, the same builders
 * the integrity code sends, so the two sides cannot drift apart; a request is
 * matched by its text (whitespace collapsed) and format, and what runs is the
 * text built here.
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

const OWNER_READS: readonly OwnerRead[] = [
  { name: 'chain-list', format: 'JSONEachRow', params: z.object({}).strict(), sql: chainListSql },
  { name: 'segment-open', format: 'RowBinary', params: z.object({ c: chainId, lo: seq }).strict(), sql: segmentOpenSql },
  { name: 'segment-bounded', format: 'RowBinary', params: z.object({ c: chainId, lo: seq, hi: seq }).strict(), sql: segmentBoundedSql },
  { name: 'offsets-open', format: 'RowBinary', params: z.object({ c: chainId, lo: seq }).strict(), sql: offsetsOpenSql },
  { name: 'offsets-bounded', format: 'RowBinary', params: z.object({ c: chainId, lo: seq, hi: seq }).strict(), sql: offsetsBoundedSql },
  {
    name: 'find-events',
    format: 'JSONEachRow',
    params: z.object({ chain_id: chainId, ids: z.array(z.string().max(64)).max(100_000) }).strict(),
    sql: findEventsSql,
  },
  { name: 'producer-scan', format: 'RowBinary', params: z.object({}).strict(), sql: producerScanSql },
  {
    name: 'producers-since',
    format: 'JSONEachRow',
    params: z.object({ ids: z.array(z.string().max(1024)).max(10_000_000), lowest: seq }).strict(),
    sql: producersSinceSql,
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
