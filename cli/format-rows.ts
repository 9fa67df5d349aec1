import type { QueryAnswer } from '../queries/saved-query.js'

export const OUTPUT_FORMATS = ['table', 'csv', 'json', 'ndjson'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

type Answer = QueryAnswer<Record<string, unknown>>

/**
 * Renders an answer for a terminal (aligned table) or a pipe (CSV, JSON,
 * NDJSON). Every format carries the provenance: a reader of any of them
 * learns whether the rows stand on verified ranges.
 */
export function formatAnswer(answer: Answer, format: OutputFormat): string {
  switch (format) {
    case 'json':
      return JSON.stringify({ ...header(answer), rows: answer.rows }, null, 2)
    case 'ndjson':
      // First line: what the rows are and what they stand on; then one row per line.
      return [JSON.stringify({ _readtrail: header(answer) }), ...answer.rows.map((r) => JSON.stringify(r))].join('\n')
    case 'csv':
      // Comment lines (pandas comment='#', csvkit --skip-lines) so a
      // spreadsheet shows the status above the data it qualifies.
      return [...notes(answer).map((n) => `# ${n}`), answer.columns.join(','), ...answer.rows.map((r) => answer.columns.map((c) => csvCell(r[c])).join(','))].join('\n')
    case 'table':
      return [table(answer.rows, answer.columns), '', ...notes(answer)].join('\n')
  }
}

function header(answer: Answer) {
  return {
    query: answer.query,
    params: answer.params,
    row_count: answer.rows.length,
    truncated: answer.truncated,
    provenance: answer.provenance,
  }
}

/** Renders bare rows (no provenance): for output that quotes part of an answer, as the demo does. */
export function formatRows(rows: readonly object[], columns: readonly string[], format: OutputFormat): string {
  const records = rows as readonly Record<string, unknown>[]
  switch (format) {
    case 'json':
      return JSON.stringify(records, null, 2)
    case 'ndjson':
      return records.map((r) => JSON.stringify(r)).join('\n')
    case 'csv':
      return [columns.join(','), ...records.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\n')
    case 'table':
      return `${table(records, columns)}\n(${records.length} rows)`
  }
}

/** The lines every human-readable format ends or starts with. */
export function notes(answer: Answer): string[] {
  const p = answer.provenance
  const lines = [`readtrail ${answer.query}: ${answer.rows.length} rows${answer.truncated ? ' (TRUNCATED: more rows exist; --param limit=0 returns all)' : ''}`]
  lines.push(`provenance: ${p.summary}`)
  for (const c of p.chains) {
    const verified = c.last_verified_at ? `, verified through ${c.verified_through} at ${c.last_verified_at} (${c.last_verify_mode})` : ''
    const signed = c.signed_through === null ? '' : c.signed_through > 0 ? `, signed through ${c.signed_through}` : ', no signed checkpoint'
    lines.push(`  ${c.chain_id} seq ${c.first_seq}..${c.last_seq} (${c.events} events): ${c.status}${verified}${signed}`)
  }
  return lines
}

function text(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (Array.isArray(value)) return value.join(',')
  return String(value)
}

// A leading = + - @ makes spreadsheets evaluate the cell: neutralise it, as
// an analyst will open the export in one.
function csvCell(value: unknown): string {
  let s = text(value)
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`
  return /[",\n\r#]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

function table(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  // Recorded values are attacker-controlled: no control character (ESC, C1)
  // reaches the investigator's terminal to move the cursor or hide a line.
  // eslint-disable-next-line no-control-regex
  const cells = rows.map((r) => columns.map((c) => text(r[c]).replace(/[\r\n\t]/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd')))
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((row) => row[i]!.length))))
  const fit = (s: string, w: number) => (s.length > w ? `${s.slice(0, w - 1)}…` : s.padEnd(w))
  const line = (values: string[]) => values.map((v, i) => fit(v, widths[i]!)).join('  ').trimEnd()
  return [line([...columns]), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')
}
