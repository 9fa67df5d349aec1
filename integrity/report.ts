/** What kind of damage a finding describes. */
export type FindingKind =
  /** The row's columns no longer hash to its stored hash: a column was edited. */
  | 'hash_mismatch'
  /** prev_hash differs from the previous row's hash: rows removed, inserted or rewritten. */
  | 'broken_link'
  /** Sequence numbers jump: rows are missing between the two. */
  | 'sequence_gap'
  /** The same sequence number appears twice. */
  | 'duplicate_seq'
  /**
   * A materialised-view table the saved queries read (access_by_principal,
   * record_access) does not hold exactly the rows access_log implies at this
   * seq: a view row was deleted, added, duplicated or edited, or access_log
   * was edited in place (views copy rows on insert only). The detail names
   * the table and whether rows are missing, extra, or both ("differs").
   */
  | 'view_mismatch'

export interface Finding {
  chain_id: string
  seq: number
  kind: FindingKind
  detail: string
}

export interface ChainSummary {
  chain_id: string
  rows: number
  first_seq: number
  last_seq: number
  head_hash: string
}

export interface VerificationReport {
  mode: 'in-db'
  ok: boolean
  database: string
  rows_verified: number
  /** Whether the query views were checked against access_log. */
  views_checked: boolean
  chains: ChainSummary[]
  findings: Finding[]
  /** True when more findings exist than were listed. */
  findings_truncated: boolean
  started_at: string
  duration_ms: number
}

export function formatReport(report: VerificationReport): string {
  const lines: string[] = []
  lines.push(`readtrail verify (${report.mode}) on ${report.database}: ${report.ok ? 'INTACT' : 'DAMAGED'}`)
  lines.push(
    `${report.rows_verified} rows in ${report.chains.length} chains verified in ${report.duration_ms} ms` +
      (report.views_checked ? ', query views checked against them' : ' (query views NOT checked)'),
  )
  if (report.chains.length === 0) lines.push('warning: the log is empty — check --data-dir / --database if you expected events')
  for (const c of report.chains) {
    lines.push(`  chain ${c.chain_id}: seq ${c.first_seq}..${c.last_seq} (${c.rows} rows), head ${c.head_hash.slice(0, 16)}…`)
  }
  if (report.findings.length > 0) {
    lines.push(`${report.findings.length}${report.findings_truncated ? '+' : ''} findings:`)
    for (const f of report.findings) lines.push(`  ${f.chain_id} seq ${f.seq}: ${f.kind} — ${f.detail}`)
  }
  return lines.join('\n')
}
