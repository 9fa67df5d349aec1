/**
 * The breach-scope report: what an attacker's account, address or session
 * read in a window, in the form a GDPR Art. 33 notification asks for
 * (categories of data, approximate numbers of subjects and records), with
 * the verification status of every figure.
 */
import type { QueryAnswer } from '../queries/saved-query.js'
import { formatCount, formatPeriod, html, renderDocument, renderFigures, renderProvenanceBanner, renderTable, type Figure, type SafeHtml } from './html.js'
import { paramWords, renderFooter, renderHeader, shellCommand, sum, timeRange, windowOf, windowText } from './report-parts.js'
import { BreachRecordRow, BreachScopeRow, parseAnswer, TimelineRow, type BreachScopeRow as ScopeRow } from './report-rows.js'
import { renderTimeline, type Bucket } from './svg-timeline.js'

type RawAnswer = QueryAnswer<Record<string, unknown>>

export interface BreachReportInput {
  generatedAt: Date
  database: string
  /** The report's parameters as the analyst gave them (principals, ips, sessions, from, to). */
  params: Readonly<Record<string, string>>
  /** The bucket breach-timeline was asked for. */
  bucket: Bucket
  scope: RawAnswer
  timeline: RawAnswer
  /** breach-records, asked with limit = how many records the report lists. */
  records: RawAnswer
}

/** The report as one self-contained HTML document. */
export function renderBreachReport(input: BreachReportInput): string {
  const scope = parseAnswer(input.scope, BreachScopeRow)
  const timeline = parseAnswer(input.timeline, TimelineRow)
  const records = parseAnswer(input.records, BreachRecordRow)
  const p = input.params
  const who = [p['principals'] && `accounts ${p['principals']}`, p['ips'] && `client IPs ${p['ips']}`, p['sessions'] && `sessions ${p['sessions']}`].filter(Boolean).join('; ')
  const window = windowOf(p)
  const body = html`${renderHeader({
    title: 'Breach scope',
    lead: `Every read of a sensitive table matching ${who || 'the given filters'} in the window below, and the records those reads returned.`,
    generatedAt: input.generatedAt,
    database: input.database,
    facts: [
      { label: 'Accounts', value: p['principals'] ?? '(any)' },
      { label: 'Client IPs', value: p['ips'] ?? '(any)' },
      { label: 'Sessions', value: p['sessions'] ?? '(any)' },
      { label: 'Window', value: windowText(window) },
    ],
    command: ['readtrail', 'report', 'breach-scope', ...paramWords(p, input.database)],
  })}
${renderProvenanceBanner([scope, timeline, records].map((a) => ({ label: a.query, provenance: a.provenance })))}
<h2>Key figures</h2>
<p class="note">For a notification: the categories of data are the tables and columns under "Scope by table"; the numbers of records and data subjects concerned are these.</p>
${renderFigures(keyFigures(scope.rows))}
<h2>Timeline</h2>
<figure class="chart">${renderTimeline(timeline.rows, { bucket: input.bucket, title: 'Rows read in scope, by table', window })}
<figcaption>Rows returned to the reads in scope, per table (breach-timeline, bucket ${input.bucket}); point at a bar for exact figures.</figcaption></figure>
<h2>Scope by table</h2>
${renderTable({
  id: 'scope-table',
  columns: [
    { key: 'database', label: 'Database' },
    { key: 'table', label: 'Table' },
    { key: 'distinct_records', label: 'Distinct records' },
    { key: 'distinct_subjects', label: 'Data subjects' },
    { key: 'reads', label: 'Reads' },
    { key: 'rows_read', label: 'Rows read' },
    { key: 'columns', label: 'Columns read' },
    { key: 'principals', label: 'Accounts' },
    { key: 'first_access', label: 'First access', kind: 'time' },
    { key: 'last_access', label: 'Last access', kind: 'time' },
  ],
  rows: scope.rows,
  emptyText: 'No read matched these filters in this window.',
})}
<h2>Records read</h2>
${renderTable({
  id: 'records-table',
  columns: [
    { key: 'database', label: 'Database' },
    { key: 'table', label: 'Table' },
    { key: 'record_id', label: 'Record id', kind: 'id' },
    { key: 'subject_id', label: 'Subject', kind: 'id' },
    { key: 'columns', label: 'Columns' },
    { key: 'reads', label: 'Reads' },
    { key: 'principals', label: 'Accounts' },
    { key: 'first_access', label: 'First access', kind: 'time' },
    { key: 'last_access', label: 'Last access', kind: 'time' },
  ],
  rows: records.rows,
  caption: records.truncated ? `The first ${formatCount(records.rows.length)} records, in the order breach-records returns them.` : undefined,
  truncatedNote: records.truncated ? truncatedNote(records.rows.length, sum(scope.rows, (r) => r.distinct_records), p, input.database) : null,
  emptyText: 'No records.',
})}
${renderFooter(input.generatedAt)}`
  return renderDocument({ title: `Breach scope — ${who || 'readtrail'}`, body })
}

function keyFigures(rows: readonly ScopeRow[]): Figure[] {
  const range = timeRange([...rows.map((r) => r.first_access), ...rows.map((r) => r.last_access)])
  const principals = new Set(rows.flatMap((r) => r.principals))
  // Headline figures first (what a notification asks), context below.
  return [
    { label: 'Distinct records', value: formatCount(sum(rows, (r) => r.distinct_records)), note: 'summed over tables' },
    subjectsFigure(rows),
    { label: 'Reads', value: formatCount(sum(rows, (r) => r.reads)), note: `${formatCount(sum(rows, (r) => r.rows_read))} rows returned` },
    { label: 'Tables read', value: formatCount(rows.length), note: rows.slice(0, 3).map((r) => `${r.database}.${r.table}`).join(', ') + (rows.length > 3 ? ', …' : '') },
    { label: 'Accounts', value: formatCount(principals.size), note: [...principals].slice(0, 3).join(', ') + (principals.size > 3 ? ', …' : '') },
    { label: 'Access period', value: range ? formatPeriod(range.first, range.last) : '—', small: true, note: 'first and last read in scope' },
  ]
}

/**
 * Subjects are counted per table, and one person can appear in several
 * tables: one table gives the exact number, several give a range (largest
 * table .. sum), never an overstated single figure.
 */
function subjectsFigure(rows: readonly ScopeRow[]): Figure {
  const known = rows.map((r) => r.distinct_subjects).filter((n): n is number => n !== null)
  const unknown = rows.length - known.length
  const missing = `${unknown} table${unknown === 1 ? '' : 's'} without a configured subject key`
  if (rows.length === 0) return { label: 'Data subjects', value: '0' }
  if (known.length === 0) return { label: 'Data subjects', value: 'unknown', note: missing }
  const max = Math.max(...known)
  const total = sum(known, (n) => n)
  if (known.length === 1 || max === total) return { label: 'Data subjects', value: formatCount(total), note: unknown > 0 ? `at least; ${missing}` : undefined }
  return { label: 'Data subjects', value: `${formatCount(max)} – ${formatCount(total)}`, note: `a person may appear in several tables${unknown > 0 ? `; ${missing}` : ''}` }
}

function truncatedNote(shown: number, total: number, params: Readonly<Record<string, string>>, database: string): SafeHtml {
  const command = shellCommand(['readtrail', 'query', 'breach-records', '--format', 'csv', '--param', 'limit=0', ...paramWords(pick(params, ['principals', 'ips', 'sessions', 'from', 'to']), database)])
  return html`<strong>${formatCount(shown)} of ${formatCount(total)} records shown.</strong> Export all with <code>${command}</code>`
}

function pick(params: Readonly<Record<string, string>>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => params[k] !== undefined).map((k) => [k, params[k]!]))
}
