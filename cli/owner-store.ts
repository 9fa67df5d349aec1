import { Readable } from 'node:stream'
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client'
import { ReadtrailError } from '../common/errors.js'
import { quoteIdent } from '../store/ddl.js'
import type { Store } from '../store/store.js'
import { callOwner, readOwnerRows, type OwnerTarget } from './owner-api.js'

/**
 * The store as `verify --independent` sees it while another process owns the
 * embedded engine: the same read calls the independent collector makes on a
 * store it holds, each sent to the owner as one of its fixed row reads
 * (cli/owner-reads.ts) and proved (cli/owner-auth.ts). The rows come back as
 * they are stored and are re-hashed and judged here, so the verdict never
 * rests on the owner's own computation; the owner can only refuse, or return
 * what the store holds under its signature.
 *
 * Only reads exist: anything else throws USAGE. The `client` offers `exec`
 * alone, the one call the row scans make.
 */
export function ownerReadStore(target: OwnerTarget): Store {
  const db = quoteIdent(target.database)
  const refuse = (what: string) => (): never => {
    throw new ReadtrailError('USAGE', `${what} is not available through the store's owner`)
  }
  const client = {
    async exec(params: { query: string; query_params?: Record<string, unknown>; clickhouse_settings?: ClickHouseSettings }) {
      const bytes = await readOwnerRows(target, params.query, params.query_params ?? {})
      return { stream: Readable.from([bytes]), query_id: '', response_headers: {} }
    },
  }
  return Object.freeze({
    kind: 'embedded' as const,
    database: target.database,
    // Narrowed on purpose: the collector's calls beyond exec fail as refusals, not as writes.
    client: client as unknown as ClickHouseClient,
    table: (name: string) => `${db}.${quoteIdent(name)}`,
    ensureSchema: refuse('creating tables'),
    // The owner checked its schema when it opened the store, and the reads name their columns.
    checkSchema: async () => {},
    async queryRows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
      const rows = await callOwner<T[]>(target, { op: 'rows', query, params, format: 'JSONEachRow' })
      if (rows === undefined) throw new ReadtrailError('STORE_UNAVAILABLE', 'the store owner no longer serves its socket')
      if (!Array.isArray(rows)) throw new ReadtrailError('STORE_UNAVAILABLE', 'the store owner answered a row read with something other than rows')
      return rows
    },
    insertRowBinary: refuse('inserting rows'),
    withDatabase: refuse('another database'),
    close: async () => {},
  })
}
