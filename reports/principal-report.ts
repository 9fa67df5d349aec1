/**
 * The principal report: everything one account read — when, from which
 * tables, how much of it outside working hours, and which records — for the
 * analyst deciding whether an account's activity was legitimate.
 */
import type { QueryAnswer } from '../queries/saved-query.js'
import { formatCount, formatPeriod, html, renderDocument, renderFigures, renderProvenanceBanner, renderTable, type Figure, type SafeHtml } from './html.js'
import { annexWords, commandLine, pageMarks, paramWords, renderFooter, renderHeader, renderSignoff, sum, timeRange, windowOf, windowText, type ReportContext } from './report-parts.js'
import { OffHoursRow, parseAnswer, PrincipalRecordRow, TimelineRow } from './report-rows.js'
import { renderTimeline } from './svg-timeline.js'
import { renderTimelineFigures } from './timeline-figures.js'
import { BUCKET_MS, parseUtc, type Bucket, type OpenWindow, type Span } from './timeline-grid.js'

type RawAnswer = QueryAnswer<Record<string, unknown>>

export interface PrincipalReportInput {
  context: ReportContext
  /** The report's parameters as the analyst gave them (principal, from?, to?, working hours), without the time zone. */
  params: Readonly<Record<string, string>>
  /** The IANA zone working hours are judged in (`--tz`), stated in the report and its reproduce line. */
  timeZone: string
  bucket: Bucket
  /** The span the chart shows (chartSpan() of the window and the reads); null: the rows' own. */
  span: Span | null
  timeline: RawAnswer
  /** off-hours-access for this principal; null when the account read nothing (no window to ask about). */
  offHours: RawAnswer | null
  /** records-touched-by-principal, asked with limit = how many records the report lists. */
  records: RawAnswer
}

/** Working-hours defaults of off-hours-access, shown when the answer's parameters leave them out. */
const OFF_HOURS_DEFAULTS = { workday_start: '08:00', workday_end: '18:00', weekdays: 'Mon–Fri' }

export function renderPrincipalReport(input: PrincipalReportInput): string {
  const timeline = parseAnswer(input.timeline, TimelineRow)
  const offHours = input.offHours && parseAnswer(input.offHours, OffHoursRow)
  const records = parseAnswer(input.records, PrincipalRecordRow)
  const { context } = input
  const p = input.params
  const principal = p['principal'] ?? ''
  const tables = tablesRead(timeline.rows, BUCKET_MS[input.bucket])
  const reads = sum(tables, (t) => t.reads)
  const offReads = offHours ? sum(offHours.rows, (r) => r.reads) : 0
  const hours = { ...OFF_HOURS_DEFAULTS, ...stringParams(offHours?.params ?? p), timezone: input.timeZone }
  const workingHours = `${hours.weekdays} ${hours.workday_start}–${hours.workday_end} ${hours.timezone}`
  const range = timeRange(tables.flatMap((t) => [t.first_bucket, t.last_bucket_end]))
  const answers = [timeline, ...(offHours ? [offHours] : []), records]

  const figures: Figure[] = [
    { label: 'Reads', value: formatCount(reads), note: `${formatCount(sum(tables, (t) => t.rows_read))} rows returned` },
    { label: 'Tables read', value: formatCount(tables.length) },
    { label: 'Off-hours reads', value: formatCount(offReads), note: reads > 0 ? `${Math.round((100 * offReads) / reads)} % of all reads` : undefined },
    { label: 'Active period', value: range ? formatPeriod(range.first, range.last) : '—', small: true, note: `first to last ${input.bucket} bucket with a read` },
  ]
  const window = windowOf(p)
  const span: OpenWindow = input.span ?? window
  const zoomed = window.from !== undefined && window.to !== undefined && (span.from !== window.from || span.to !== window.to)

  const body = html`${renderHeader(
    {
      title: `Account activity: ${principal}`,
      lead: `Every read of a sensitive table by ${principal} in the window below: when, which tables, how much outside working hours, and which records.`,
      facts: [
        { label: 'Account', value: principal },
        { label: 'Window', value: windowText(window) },
        { label: 'Filter', value: 'A read is included when it falls inside the window AND its account is exactly this principal id.' },
        { label: 'Working hours', value: workingHours },
      ],
      timeZone: `UTC for every time shown. Working hours (and so off-hours reads) are judged in ${input.timeZone}, daylight saving included; --tz changes it.`,
      command: ['readtrail', 'report', 'principal', ...paramWords(p), '--tz', input.timeZone, ...annexWords(context)],
    },
    context,
  )}
${renderProvenanceBanner(answers.map((a) => ({ label: a.query, provenance: a.provenance })))}
<h2>Key figures</h2>
${renderFigures(figures, 4)}
<h2>Timeline</h2>
<figure class="chart">${renderTimeline(timeline.rows, { bucket: input.bucket, title: `Rows read by ${principal}, by table`, span })}
<figcaption>Rows returned to ${principal}, per table (principal-timeline, bucket ${input.bucket})${
    zoomed ? `; the chart shows ${windowText(span)}, around every read (the window is longer)` : ''
  }. The figures are in the table below.</figcaption></figure>
${renderTimelineFigures(timeline.rows, { id: 'timeline-table', bucket: input.bucket, span })}
<h2>Tables read</h2>
${renderTable({
  id: 'tables-table',
  columns: [
    { key: 'database', label: 'Database' },
    { key: 'table', label: 'Table' },
    { key: 'reads', label: 'Reads' },
    { key: 'rows_read', label: 'Rows read' },
    { key: 'first_bucket', label: 'First active', kind: 'time' },
    { key: 'last_bucket_end', label: 'Last active until', kind: 'time' },
  ],
  rows: tables,
  caption: `Totals of the timeline, per table; times to the ${input.bucket} bucket.`,
  emptyText: 'This account read no sensitive table in this window.',
})}
<h2>Reads outside working hours (${workingHours})</h2>
${offHours ? offHoursTable(offHours.rows, offHours.params) : html`<p class="empty" id="off-hours-table">No reads, so none outside working hours.</p>`}
<h2>Records touched</h2>
${renderTable({
  id: 'records-table',
  columns: [
    { key: 'database', label: 'Database' },
    { key: 'table', label: 'Table' },
    { key: 'record_id', label: 'Record id', kind: 'id' },
    { key: 'columns', label: 'Columns' },
    { key: 'access_count', label: 'Reads' },
    { key: 'first_access', label: 'First access', kind: 'time' },
    { key: 'last_access', label: 'Last access', kind: 'time' },
  ],
  rows: records.rows,
  hoist: ['database', 'table', 'columns'],
  truncatedNote: records.truncated ? recordsNote(records.rows.length, p, context) : null,
  emptyText: 'No records.',
})}
${renderSignoff(context)}
${renderFooter(context.generatedAt)}`
  return renderDocument({ title: `Account activity — ${principal}`, body, pageMarks: pageMarks(`Account activity: ${principal}`, context) })
}

type TableRead = {
  database: string
  table: string
  reads: number
  rows_read: number
  first_bucket: string
  last_bucket_end: string
}

/** Timeline rows summed per table; buckets partition the reads, so the sums are exact. */
function tablesRead(rows: readonly TimelineRow[], bucketMs: number): TableRead[] {
  const byTable = new Map<string, TableRead>()
  // Normalised through epoch ms so first/last compare as text in one format.
  const timed = rows.map((r) => ({ r, at: parseUtc(r.bucket_start) })).sort((a, b) => a.at - b.at)
  for (const { r, at } of timed) {
    const key = `${r.database}\u0000${r.table}`
    const end = new Date(at + bucketMs).toISOString()
    const t = byTable.get(key)
    if (t) {
      t.reads += r.reads
      t.rows_read += r.rows_read
      t.last_bucket_end = end
    } else {
      byTable.set(key, { database: r.database, table: r.table, reads: r.reads, rows_read: r.rows_read, first_bucket: new Date(at).toISOString(), last_bucket_end: end })
    }
  }
  return [...byTable.values()].sort((a, b) => b.rows_read - a.rows_read || a.table.localeCompare(b.table))
}

function offHoursTable(rows: readonly OffHoursRow[], params: Record<string, unknown>): SafeHtml {
  return renderTable({
    id: 'off-hours-table',
    columns: [
      { key: 'database', label: 'Database' },
      { key: 'table', label: 'Table' },
      { key: 'reads', label: 'Reads' },
      { key: 'rows_read', label: 'Rows read' },
      { key: 'first_access', label: 'First access', kind: 'time' },
      { key: 'last_access', label: 'Last access', kind: 'time' },
    ],
    rows,
    caption: `Source: off-hours-access over ${windowText(windowOf(stringParams(params)))}.`,
    emptyText: 'No reads outside working hours.',
  })
}

function recordsNote(shown: number, params: Readonly<Record<string, string>>, context: ReportContext): SafeHtml {
  const keep = Object.fromEntries(Object.entries(params).filter(([k]) => k === 'principal' || k === 'from' || k === 'to'))
  const command = commandLine(context, ['readtrail', 'query', 'records-touched-by-principal', '--format', 'csv', '--param', 'limit=0', ...paramWords(keep)])
  return html`<strong>The first ${formatCount(shown)} records shown; the account touched more.</strong> Export all with <code>${command}</code>`
}

function stringParams(params: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(params).filter((e): e is [string, string] => typeof e[1] === 'string'))
}
