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
  lines.push(`${report.rows_verified} rows in ${report.chains.length} chains verified in ${report.duration_ms} ms`)
  for (const c of report.chains) {
    lines.push(`  chain ${c.chain_id}: seq ${c.first_seq}..${c.last_seq} (${c.rows} rows), head ${c.head_hash.slice(0, 16)}…`)
  }
  if (report.findings.length > 0) {
    lines.push(`${report.findings.length}${report.findings_truncated ? '+' : ''} findings:`)
    for (const f of report.findings) lines.push(`  ${f.chain_id} seq ${f.seq}: ${f.kind} — ${f.detail}`)
  }
  return lines.join('\n')
}
