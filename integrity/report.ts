/**
 * What kind of damage a finding describes. Every finding names a chain and a
 * sequence number; the kinds say what happened there, as precisely as the
 * evidence allows.
 */
export type FindingKind =
  /** The row's columns no longer hash to its stored hash: a column was edited. */
  | 'hash_mismatch'
  /**
   * The row hashes correctly but the next row committed to a different hash:
   * its columns were edited and its hash recomputed.
   */
  | 'rewritten_row'
  /** prev_hash differs from the previous row's hash and nothing above explains why. */
  | 'broken_link'
  /** Rows are missing: `seq` is the first missing sequence number. */
  | 'deleted_rows'
  /** A second row claims this seq and nothing links to it: a forged row was inserted. */
  | 'inserted_row'
  /** The same row is stored more than once. */
  | 'duplicate_row'
  /** Two rows at this seq differ and neither is linked from the next row: the chain forked. */
  | 'forked'
  /** The rows at seq and seq+1 are in each other's places. */
  | 'reordered'
  /** The chain ends before its newest signed checkpoint: `seq` is the first missing row. */
  | 'truncated'
  /** The row at a signed checkpoint's seq has another hash: the chain up to here was rewritten. */
  | 'checkpoint_mismatch'
  /** A checkpoint's signature does not verify under the public key: forged or edited. */
  | 'checkpoint_invalid'
  /** A line of the checkpoint log is not a checkpoint at all. */
  | 'checkpoint_unreadable'
  /** Checkpoints of a chain skip an index or do not link to their predecessor: one was removed or replaced. */
  | 'checkpoint_chain_broken'
  /** The Kafka copy holds checkpoints the log file lacks at its end: the file was rolled back. */
  | 'checkpoint_log_rolled_back'
  /** The file and the Kafka copy hold different checkpoints under the same index. */
  | 'checkpoint_conflict'
  /** A producer's sequence has a hole older than the grace window: events never reached the store. */
  | 'producer_gap'
  /** A producer sequence number is stored twice. */
  | 'producer_duplicate'
  /**
   * A producer's hole whose every missing seq is named by a dead letter
   * signed by the checkpoint key: the message reached Kafka and the writer
   * refused it (undecodable, invalid, or refused by ClickHouse). Accounted
   * for, not lost: at the row stored at its source offset, or the first
   * after it, with the sources in `dead_letters`. It damages no stored row,
   * so it fails no answer (queries/provenance.ts); an operator acknowledges
   * it after investigating (`verify --acknowledge producer:<id>:<seq>`).
   */
  | 'dead_lettered'
  /**
   * The materialised-view table the breach queries read
   * (access_by_principal) does not hold exactly the rows access_log implies
   * at this seq. The detail names the table and whether rows are missing,
   * extra, or both.
   */
  | 'view_mismatch'
  /** A chain id that is not `<configured topic>/<existing partition>`: rows no writer of this topic can have stored. */
  | 'unknown_chain'
  /**
   * A copy of the checkpoints (the file or the Kafka topic) is missing or
   * emptied while the other copy, the verify state or the store shows there
   * were checkpoints: it was deleted or rolled back.
   */
  | 'checkpoint_copy_missing'
  /** A chain's newest checkpoint index or seq is lower than a value recorded earlier (verify state or the other copy): the checkpoints were wound back. */
  | 'checkpoint_regressed'
  /** The checkpoint topic's retention or cleanup policy changed, or its log-start offset advanced: checkpoints were or can be deleted from Kafka. */
  | 'checkpoint_topic_weakened'
  /** A row's kafka_offset does not rise above the row before it, or lies beyond the partition's end: the offset was forged. */
  | 'offset_invalid'
  /** Offsets skipped between two rows of a chain that no dead letter names as its source: a stored message's row is gone. */
  | 'offset_gap'
  /**
   * Rows missing inside one Kafka message (a wire-2 batch): consecutive
   * rows skip events of a message, or the head stops inside a message whose
   * offset the group committed. The writer stores or refuses a message
   * whole, so no dead letter explains it: rows were deleted.
   */
  | 'message_incomplete'
  /**
   * A dead letter naming an offset of this chain does not verify under the
   * checkpoint key (unsigned, signed by another key, its signature not
   * holding for its source, error code and message), or was signed for
   * another message than Kafka holds at that offset: anyone who can produce
   * to the dead-letter topic can write one, and it explains no gap. At the
   * row stored at that offset, or the first row after it.
   */
  | 'dead_letter_forged'
  /** The chain's head disagrees with the consumer group's committed offset: rows the writer stored and committed are missing, or rows were added that it never committed. */
  | 'head_mismatch'
  /** A query-serving table or the view that feeds it has another engine, definition or column list than readtrail creates: its answers cannot be trusted. */
  | 'query_table_altered'

export interface Finding {
  chain_id: string
  seq: number
  kind: FindingKind
  detail: string
  /** For producer findings: the producer and the missing or repeated producer_seq range. */
  producer?: { producer_id: string; from_seq: number; to_seq: number }
  /** For offset_gap: the offsets skipped, inclusive (strings: Kafka offsets are bigint). */
  offsets?: { from: string; to: string }
  /** For dead_lettered (and producer_gap holes partly dead-lettered): the signed dead letters naming missing seqs, first 10. */
  dead_letters?: { producer_seq: number; source: string; code: string }[]
}

/** A finding an acknowledgement covers: reported, not counted as damage. */
export interface AcknowledgedFinding extends Finding {
  acknowledged: { by: string; at: string; reason: string }
}

export interface ChainSummary {
  chain_id: string
  rows: number
  /** First and last sequence number this run verified (incremental runs start at their anchor). */
  first_seq: number
  last_seq: number
  head_hash: string
  /** Newest signed checkpoint of the chain that matched its row, if any. */
  checkpoint?: { index: number; seq: number; hash: string; signed_at: string }
  /**
   * First seq no matching checkpoint covers (null: every row is signed).
   * Rows from here to last_seq were checked as a chain but no signature
   * vouches for them: they are never reported as verified. Not a finding: a
   * growing chain always has such a tail, up to the checkpoint interval.
   */
  unsigned_from_seq: number | null
  /** Rows in unsigned_from_seq..last_seq. */
  unsigned_rows: number
}

/** A producer hole younger than the grace window: the events may still be on their way. */
export interface InFlightGap {
  producer_id: string
  from_seq: number
  to_seq: number
  /** When the event after the hole was stored. */
  next_stored_at: string
}

export interface CheckpointSummary {
  /** Sources read; null where a source was not checked (the report says why in `warnings`). */
  file: string | null
  topic: string | null
  /** Distinct checkpoints for this database across both sources. */
  total: number
  /** Checkpoints whose signature verified. */
  valid: number
  key_id: string | null
}

export interface VerificationReport {
  mode: 'in-db' | 'independent'
  /** True when only rows after each chain's anchor checkpoint were checked (--since-checkpoint). */
  incremental: boolean
  ok: boolean
  database: string
  rows_verified: number
  /** Whether the query views were checked against access_log. */
  views_checked: boolean
  chains: ChainSummary[]
  checkpoints: CheckpointSummary
  producers: { checked: number; in_flight: InFlightGap[] }
  findings: Finding[]
  /**
   * Findings an operator acknowledged (the signed verify state records who,
   * when and why): still listed, never counted in `ok`.
   */
  acknowledged?: AcknowledgedFinding[]
  /** True when more findings exist than were listed. */
  findings_truncated: boolean
  /** What was not checked and why; never silently. */
  warnings: string[]
  /**
   * Per chain, the highest index among the valid checkpoints of both copies
   * and the seq it vouches for: what a later run passes back as
   * `checkpointHigh`, so that winding both copies back is a finding.
   */
  checkpoint_high: Record<string, { index: number; seq: number }>
  /** Whether chain ids, offsets and heads were held against the Kafka topic and the writer's group. */
  kafka_checked: boolean
  /**
   * Messages the chain writer refused because no trusted producer key
   * vouched for them (its signed dead letters: unsigned, unknown key, bad
   * signature, another service's key), per producer id they claim (a claim
   * nobody vouched for; null when the message did not decode) and code. The
   * chains are not damaged by them, but someone who can write to the access
   * topic sent them: an alert, not a finding.
   */
  refused_producers?: RefusedProducer[]
  /** The side chains (db_audit_log, alert_log): rows checked and how far a signed checkpoint vouches for them. */
  side_chains?: SideChainSummary[]
  /** Per database: its own audit log's reads of sensitive tables, and how many no hooked read matches. */
  cross_check?: CrossCheckLine[]
  /** Verifier worker threads (independent mode). */
  workers?: number
  started_at: string
  duration_ms: number
}

export interface RefusedProducer {
  producer_id: string | null
  code: string
  messages: number
}

export interface SideChainSummary {
  table: string
  chain_id: string
  rows: number
  first_seq: number
  last_seq: number
  /** The highest seq a signed checkpoint vouches for and the stored row matches; null: none. */
  signed_through: number | null
}

export interface CrossCheckLine {
  db_name: string
  entries: number
  unmatched: number
}

export function formatReport(report: VerificationReport): string {
  const lines: string[] = []
  const how = `${report.mode}${report.incremental ? ', since checkpoint' : ''}`
  lines.push(`readtrail verify (${how}) on ${report.database}: ${report.ok ? 'INTACT' : 'DAMAGED'}`)
  lines.push(
    `${report.rows_verified} rows in ${report.chains.length} chains verified in ${report.duration_ms} ms` +
      (report.views_checked ? ', query views checked against them' : ' (query views NOT checked)'),
  )
  const cp = report.checkpoints
  lines.push(
    `checkpoints: ${cp.valid}/${cp.total} valid` +
      ` (log ${cp.file ?? 'NOT read'}, topic ${cp.topic ?? 'NOT read'}${cp.key_id ? `, key ${cp.key_id.slice(0, 16)}…` : ''})`,
  )
  lines.push(`producers: ${report.producers.checked} checked, ${report.producers.in_flight.length} holes still within the grace window`)
  if (report.chains.length === 0) lines.push('warning: the log is empty — check --data-dir / --database if you expected events')
  for (const w of report.warnings) lines.push(`warning: ${w}`)
  for (const c of report.chains) {
    const signed = c.checkpoint ? `, signed through seq ${c.checkpoint.seq} (checkpoint #${c.checkpoint.index})` : ', no matching checkpoint'
    lines.push(`  chain ${c.chain_id}: seq ${c.first_seq}..${c.last_seq} (${c.rows} rows), head ${c.head_hash.slice(0, 16)}…${signed}`)
    if (c.unsigned_from_seq !== null && c.unsigned_rows > 0) {
      const range = c.unsigned_from_seq === c.last_seq ? `row ${c.last_seq}` : `rows ${c.unsigned_from_seq}..${c.last_seq}`
      lines.push(`    ${range} UNSIGNED (newer than the newest checkpoint): checked as a chain, not verified`)
    }
  }
  for (const c of report.side_chains ?? []) {
    const signed = c.signed_through === null ? ', no matching checkpoint' : `, signed through seq ${c.signed_through}`
    lines.push(`  ${c.table} chain ${c.chain_id}: seq ${c.first_seq}..${c.last_seq} (${c.rows} rows)${signed}`)
  }
  for (const c of report.cross_check ?? []) {
    lines.push(
      c.unmatched === 0
        ? `database ${c.db_name}: ${c.entries} database-side reads, all matched`
        : `UNAUDITED: database ${c.db_name}: ${c.entries} database-side reads, ${c.unmatched} unmatched (no hooked read issued them; readtrail query unaudited-reads lists them)`,
    )
  }
  for (const r of report.refused_producers ?? []) {
    lines.push(`ALERT: ${r.messages} message(s) refused as ${r.code} (no trusted producer key vouches for them), claiming producer ${r.producer_id ?? '(unreadable)'}`)
  }
  for (const g of report.producers.in_flight) {
    lines.push(`  in flight: producer ${g.producer_id} seq ${g.from_seq}..${g.to_seq} (next event stored ${g.next_stored_at})`)
  }
  if (report.findings.length > 0) {
    lines.push(`${report.findings.length}${report.findings_truncated ? '+' : ''} findings:`)
    for (const f of report.findings) lines.push(`  ${f.chain_id} seq ${f.seq}: ${f.kind} — ${f.detail}`)
  }
  const acked = report.acknowledged ?? []
  if (acked.length > 0) {
    lines.push(`${acked.length} acknowledged (not counted as damage):`)
    for (const f of acked) lines.push(`  ${f.chain_id} seq ${f.seq}: ${f.kind} — acknowledged by ${f.acknowledged.by} at ${f.acknowledged.at}: ${f.acknowledged.reason}`)
  }
  return lines.join('\n')
}
