/**
 * What the verifier knows about one stored row, however it learnt it (SQL in
 * ClickHouse, or re-encoding streamed rows itself). Both verification modes
 * reduce the log to these facts and share one classifier, so they name the
 * same damage the same way.
 */
export interface RowFacts {
  seq: number
  /** Lowercase hex. */
  prev_hash: string
  /** The stored hash, lowercase hex. */
  hash: string
  /** The stored hash equals SHA-256 of the row's canonical encoding. */
  self_ok: boolean
  event_id: string
}

/**
 * A row that failed a check against its predecessor in (seq, hash) order, or
 * its own hash: the classifier looks at the rows around it. `prev_seq` is the
 * previous row's seq (0 for a chain's first row: its predecessor is genesis).
 */
export interface Suspect {
  chain_id: string
  seq: number
  prev_seq: number
}

/** The stored row(s) at a checkpointed seq. */
export interface CheckpointRow {
  chain_id: string
  seq: number
  hash: string
  self_ok: boolean
}

/**
 * A producer_seq that does not follow the previous one of the same producer
 * (ordered by producer_seq): `prev_producer_seq` 0 means it is the producer's
 * first stored event. Equal values mean a repeat.
 */
export interface ProducerBreak {
  producer_id: string
  producer_seq: number
  prev_producer_seq: number
  /** Where the event at producer_seq is stored. */
  chain_id: string
  seq: number
  /** Microseconds since the epoch when it was stored. */
  ingested_at_us: number
}

/** Per chain: what a scan saw. */
export interface ChainScan {
  chain_id: string
  rows: number
  first_seq: number
  last_seq: number
  /** Hash of the row with the highest seq, hex. */
  head_hash: string
}
