import type { AccessEvent } from '../../schemas/access-event.js'
import type { ChainedRow } from '../../store/access-log-columns.js'

/** Where a row sits: its chain place always, its Kafka place and provenance when they differ from a wire-1 message's. */
export type RowPlace = Pick<ChainedRow, 'chain_id' | 'seq' | 'prev_hash' | 'kafka_offset' | 'ingested_at'> &
  Partial<Pick<ChainedRow, 'message_index' | 'message_events' | 'schema_version' | 'key_id'>>

/**
 * A stored row built by hand, to check the encoder and linkEntries against.
 * The defaults are a wire-1 message's (event 0 of 1, schema 1, unsigned),
 * spelled out here rather than taken from consumers/chain.ts so a test
 * notices if the writer's defaults move.
 */
export function chainedRow(event: AccessEvent, place: RowPlace): ChainedRow {
  return { ...event, message_index: 0, message_events: 1, schema_version: 1, key_id: '', ...place }
}
