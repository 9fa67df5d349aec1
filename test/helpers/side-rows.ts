import { createHash, hash } from 'node:crypto'
import { uuidv7 } from '../../common/uuid.js'
import { GENESIS_HASH } from '../../consumers/chain.js'
import type { AlertEvent } from '../../schemas/alert-event.js'
import type { DbAuditEvent } from '../../schemas/db-audit-event.js'
import { RowBinaryWriter } from '../../store/row-binary.js'
import { sideTableDdl, type SideTable } from '../../store/side-tables.js'
import type { Store } from '../../store/store.js'

/** Hex SHA-256 of a statement's text: what a db_audit_log entry and a hooked read carry as statement_digest. */
export function statementDigest(statement: string): string {
  return createHash('sha256').update(statement, 'utf8').digest('hex')
}

let readerSeq = 0

/** A valid pgAudit entry with test defaults (logged_at in µs); override any field. */
export function makeDbAuditEvent(overrides: Partial<DbAuditEvent> = {}): DbAuditEvent {
  const statement = overrides.statement ?? 'SELECT id, full_name FROM applicants WHERE id = $1'
  readerSeq += 1
  return {
    event_id: uuidv7(),
    source_kind: 'pgaudit',
    logged_at: Date.UTC(2026, 10, 27, 10) * 1000,
    db_name: 'registry',
    db_user: 'app',
    client_addr: '192.0.2.10',
    application_name: 'records-api',
    db_session: '4242',
    command: 'SELECT',
    object_name: 'public.applicants',
    statement,
    statement_truncated: false,
    statement_digest: statementDigest(statement),
    log_file: '/var/log/postgresql/postgresql.csv',
    log_offset: readerSeq * 100,
    reader_seq: readerSeq,
    ...overrides,
  }
}

let producerSeq = 0

/** A valid extraction-guard alert with test defaults; override any field. */
export function makeAlertEvent(overrides: Partial<AlertEvent> = {}): AlertEvent {
  producerSeq += 1
  return {
    alert_id: uuidv7(),
    occurred_at: Date.UTC(2026, 10, 27, 10) * 1000,
    environment: 'test',
    principal_id: 'clerk.test',
    principal_type: 'user',
    db_name: 'registry',
    table_name: 'applicants',
    budget: 'applicants-per-minute',
    window_seconds: 60,
    limit: 300,
    observed: 301,
    action: 'alert',
    read_id: '',
    records_in_read: 50,
    detail: '',
    producer_seq: producerSeq,
    ...overrides,
  }
}

/**
 * Creates a side table if missing and stores `events` as one chain
 * (`chainId`, seq 1…), hashed as the side-chain writer links them: every
 * hashed column in table order, prev_hash first, then the hash.
 */
export async function insertSideRows<E>(store: Store, table: SideTable<E>, chainId: string, events: readonly E[]): Promise<void> {
  await store.client.command({ query: sideTableDdl(store.table(table.table), table) })
  const writer = new RowBinaryWriter()
  // One insert block stays well under max_insert_block_size; a large fixture goes in slices.
  const SLICE = 50_000
  let prev = GENESIS_HASH
  for (let from = 0; from < events.length; from += SLICE) {
    writer.reset()
    const slice = events.slice(from, from + SLICE)
    for (const [i, event] of slice.entries()) {
      const seq = from + i + 1
      const start = writer.length
      const row = {
        chain_id: chainId, seq, prev_hash: prev, kafka_offset: BigInt(seq - 1), message_index: 0, message_events: 1,
        ingested_at: Date.UTC(2026, 11, 1) * 1000, schema_version: 1, key_id: 'test-key', producer_id: 'test-producer', service: 'test-service', event,
      }
      for (const column of table.columns) column.write(writer, row)
      const rowHash = hash('sha256', writer.view(start), 'buffer')
      writer.bytes(rowHash)
      prev = rowHash
    }
    await store.insertRowBinary(table.table, writer.slice(0), slice.length, table.storedColumnNames)
  }
}
