import type { ErrorCode } from '../common/error-codes.js'

/** What one repair step did, or would do with --dry-run, or could not prove. */
export interface RepairItem {
  action: 'restore' | 'quarantine' | 'republish'
  chain_id: string
  from_seq: number
  /** null: every seq from `from_seq` on. */
  to_seq: number | null
  outcome: 'restored' | 'provable' | 'quarantined' | 'would_quarantine' | 'republished' | 'would_republish' | 'unproved'
  /** Why it could not be done; null when it was (or would be). */
  code: ErrorCode | null
  detail: string
  /** Rows quarantined (or that would be), for the operator to see. */
  rows?: { seq: number; kafka_offset: string; event_id: string; reason: string }[]
}

export interface RepairReport {
  dry_run: boolean
  items: RepairItem[]
  warnings: string[]
}

/** 0: nothing to repair, or all repaired; 1: something remains unproved; 3: a dry run found repairs a real run would make. */
export function repairExitCode(report: RepairReport): number {
  if (report.items.some((i) => i.outcome === 'unproved')) return 1
  if (report.dry_run && report.items.length > 0) return 3
  return 0
}

function seqs(item: RepairItem): string {
  if (item.to_seq === null) return `seq ${item.from_seq}…`
  return item.from_seq === item.to_seq ? `seq ${item.from_seq}` : `seqs ${item.from_seq}..${item.to_seq}`
}

export function formatRepairReport(report: RepairReport): string {
  const lines: string[] = []
  for (const item of report.items) {
    const what = item.outcome === 'unproved' ? `UNPROVED ${item.code}` : item.outcome.toUpperCase().replace('_', ' ')
    lines.push(`${item.action.padEnd(10)} ${item.chain_id} ${seqs(item)}: ${what}: ${item.detail}`)
    for (const r of item.rows ?? []) lines.push(`             seq ${r.seq} offset ${r.kafka_offset} event ${r.event_id}: ${r.reason}`)
  }
  for (const w of report.warnings) lines.push(`warning: ${w}`)
  const unproved = report.items.filter((i) => i.outcome === 'unproved').length
  const done = report.items.length - unproved
  if (report.items.length === 0) lines.push('nothing to repair')
  else if (report.dry_run) lines.push(`dry run: ${done} repair(s) a real run would make, ${unproved} that cannot be proved; nothing was changed`)
  else lines.push(`${done} repaired, ${unproved} left unproved (nothing unproved was inserted or removed)`)
  return lines.join('\n')
}
