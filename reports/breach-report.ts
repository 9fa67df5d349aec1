/**
 * The breach-scope report: what an attacker's account, address or session
 * read in a window, in the form a GDPR Art. 33 notification asks for
 * (categories of data, approximate numbers of subjects and records), with
 * the verification status of every figure.
 */
import type { QueryAnswer } from '../queries/saved-query.js'
import { formatCount, formatPeriod, html, renderDocument, renderFigures, renderProvenanceBanner, renderTable, type Figure, type SafeHtml } from './html.js'
import { annexWords, commandLine, pageMarks, paramWords, renderFooter, renderHeader, renderSignoff, sum, timeRange, windowOf, windowText, type ReportContext } from './report-parts.js'
import { BreachRecordRow, BreachScopeRow, parseAnswer, TimelineRow, type BreachScopeRow as ScopeRow } from './report-rows.js'
import { renderTimeline } from './svg-timeline.js'
import { renderTimelineFigures } from './timeline-figures.js'
import type { Bucket, OpenWindow, Span } from './timeline-grid.js'

type RawAnswer = QueryAnswer<Record<string, unknown>>

export interface BreachReportInput {
  context: ReportContext
  /** The report's parameters as the analyst gave them (principals, ips, sessions, from, to). */
  params: Readonly<Record<string, string>>
  /** The bucket breach-timeline was asked for. */
  bucket: Bucket
  /** The span the chart shows (chartSpan() of the window and the reads); null: the rows' own. */
  span: Span | null
  scope: RawAnswer
  timeline: RawAnswer
  /** breach-records, asked with limit = how many records the report lists. */
  records: RawAnswer
}

/** The leads a breach filter takes, as the report names them. */
const LEADS = [
  { key: 'principals', facts: 'Accounts', match: 'its account is one listed' },
  { key: 'ips', facts: 'Client IPs', match: 'its client IP is one listed' },
  { key: 'sessions', facts: 'Sessions', match: 'its session is one listed' },
] as const

/**
 * What queries/breach-filter.ts selects, in words: the window AND any one
 * of the leads (a UNION of one branch per kind of lead, each read once).
 */
export function filterSemantics(params: Readonly<Record<string, string>>): string {
  const given = LEADS.filter((l) => params[l.key] !== undefined && params[l.key] !== '')
  if (given.length === 0) return 'A read is in scope when it falls inside the window.'
  const leads = given.map((l) => l.match)
  const which = given.length === 1 ? leads[0]! : `${leads.join(' OR ')} (any one suffices)`
  return `A read is in scope when it falls inside the window AND ${which}. Within a list, any entry matches. A read matching several leads is counted once.`
}

/** The report as one self-contained HTML document. */
export function renderBreachReport(input: BreachReportInput): string {
  const scope = parseAnswer(input.scope, BreachScopeRow)
  const timeline = parseAnswer(input.timeline, TimelineRow)
  const records = parseAnswer(input.records, BreachRecordRow)
  const { context } = input
  const p = input.params
  const who = [p['principals'] && `accounts ${p['principals']}`, p['ips'] && `client IPs ${p['ips']}`, p['sessions'] && `sessions ${p['sessions']}`].filter(Boolean).join('; ')
  const window = windowOf(p)
  const span: OpenWindow = input.span ?? window
  const zoomed = span.from !== window.from || span.to !== window.to
  const body = html`${renderHeader(
    {
      title: 'Breach scope',
      lead: `Every read of a sensitive table matching ${who || 'the given filters'} in the window below, and the records those reads returned.`,
      facts: [
        ...LEADS.map((l) => ({ label: l.facts, value: p[l.key] ?? '(any)' })),
        { label: 'Window', value: windowText(window) },
        { label: 'Filter', value: filterSemantics(p) },
      ],
      timeZone: 'UTC: every time in this report.',
      command: ['readtrail', 'report', 'breach-scope', ...paramWords(p), ...annexWords(context)],
    },
    context,
  )}
${renderProvenanceBanner([scope, timeline, records].map((a) => ({ label: a.query, provenance: a.provenance })))}
<h2>Key figures</h2>
<p class="note">For a notification: the categories of data are the tables and columns under "Scope by table"; the numbers of records and data subjects concerned are these.</p>
${renderFigures(keyFigures(scope.rows))}
<h2>Timeline</h2>
<figure class="chart">${renderTimeline(timeline.rows, { bucket: input.bucket, title: 'Rows read in scope, by table', span })}
<figcaption>Rows returned to the reads in scope, per table (breach-timeline, bucket ${input.bucket})${
    zoomed ? `; the chart shows ${windowText(span)}, around every read in scope (the window is longer)` : ''
  }. The figures are in the table below.</figcaption></figure>
${renderTimelineFigures(timeline.rows, { id: 'timeline-table', bucket: input.bucket, span })}
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
  hoist: ['database', 'table', 'columns', 'principals'],
  caption: records.truncated ? `The first ${formatCount(records.rows.length)} records, in the order breach-records returns them.` : undefined,
  truncatedNote: records.truncated ? truncatedNote(records.rows.length, sum(scope.rows, (r) => r.distinct_records), p, context) : null,
  emptyText: 'No records.',
})}
${renderSignoff(context)}
${renderFooter(context.generatedAt)}`
  return renderDocument({ title: `Breach scope — ${who || 'readtrail'}`, body, pageMarks: pageMarks('Breach scope', context) })
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

function truncatedNote(shown: number, total: number, params: Readonly<Record<string, string>>, context: ReportContext): SafeHtml {
  const command = commandLine(context, ['readtrail', 'query', 'breach-records', '--format', 'csv', '--param', 'limit=0', ...paramWords(pick(params, ['principals', 'ips', 'sessions', 'from', 'to']))])
  return html`<strong>${formatCount(shown)} of ${formatCount(total)} records shown.</strong> Export all with <code>${command}</code>`
}

function pick(params: Readonly<Record<string, string>>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => params[k] !== undefined).map((k) => [k, params[k]!]))
}
