import { uuidv7 } from '../../common/uuid.js'
import type { AccessEvent } from '../../schemas/access-event.js'

let seq = 0

/**
 * A valid access event with test defaults; override any field. Each event is
 * its own producer's first (producer_seq 1), so stores built from these
 * events have no producer holes unless a test makes them on purpose.
 */
export function makeEvent(overrides: Partial<AccessEvent> = {}): AccessEvent {
  const read_id = uuidv7()
  return {
    event_id: uuidv7(),
    read_id,
    part_index: 0,
    part_count: 1,
    occurred_at: Date.UTC(2026, 10, 27, 10) * 1000 + ++seq,
    principal_id: 'clerk.test',
    principal_type: 'user',
    on_behalf_of: null,
    session_hash: null,
    client_ip: '192.0.2.10',
    service: 'test-service',
    environment: 'test',
    action: 'read',
    db_name: 'registry',
    table_name: 'applicants',
    columns: ['id', 'full_name'],
    record_ids: ['1', '2'],
    record_ids_complete: true,
    row_count: 2,
    query_fingerprint: 'SELECT id, full_name FROM applicants WHERE id IN (?+)',
    db_session: '',
    statement_digest: '',
    purpose: null,
    trace_id: null,
    outcome: 'success',
    producer_id: `test-producer-${read_id}`,
    producer_seq: 1,
    ...overrides,
  }
}
