/**
 * The timeline's figures as a table printed under the chart: bars only show
 * shapes, tooltips are lost on paper, and an annex must state its numbers.
 * Every period with a read, at most `maxRows` of them (adjacent bars merged
 * as the chart merges them), with its reads and rows per table.
 */
import { formatCount, renderTable, type SafeHtml } from './html.js'
import type { TimelineRow } from './report-rows.js'
import { rankTables, tableKey } from './svg-timeline.js'
import { binTimeline, durationText, type Bucket, type OpenWindow } from './timeline-grid.js'

export interface TimelineFiguresOptions {
  id: string
  bucket: Bucket
  /** The span the chart shows (the same bars, merged further when needed). */
  span?: OpenWindow | undefined
  /** At most this many periods (table rows). @default 48 */
  maxRows?: number
}

export function renderTimelineFigures(rows: readonly TimelineRow[], options: TimelineFiguresOptions): SafeHtml {
  const tables = rankTables(rows, 'rows_read')
  const index = new Map(tables.map((t, i) => [t, i]))
  const grid = binTimeline(rows, { bucket: options.bucket, maxBars: options.maxRows ?? 48, span: options.span, seriesIndex: (r) => index.get(tableKey(r))! })
  const periods = grid.bins
    .filter((b) => b.values.some((v) => v.reads > 0 || v.rows_read > 0))
    .map((b) => ({
      from: new Date(b.start).toISOString(),
      to: new Date(b.start + grid.width).toISOString(),
      reads: b.values.reduce((s, v) => s + v.reads, 0),
      rows_read: b.values.reduce((s, v) => s + v.rows_read, 0),
      by_table: b.values
        .map((v, i) => (v.rows_read > 0 || v.reads > 0 ? `${tables[i]}: ${formatCount(v.rows_read)} rows in ${formatCount(v.reads)} reads` : null))
        .filter((t): t is string => t !== null)
        .join('; '),
    }))
  const perTable = tables.length > 1
  return renderTable({
    id: options.id,
    columns: [
      { key: 'from', label: 'From', kind: 'time' },
      { key: 'to', label: 'To', kind: 'time' },
      { key: 'reads', label: 'Reads' },
      { key: 'rows_read', label: 'Rows read' },
      ...(perTable ? [{ key: 'by_table', label: 'By table' }] : []),
    ],
    rows: periods,
    caption: `The chart's figures: every ${durationText(grid.width)} with a read${perTable ? '' : ` (all in ${tables[0] ?? 'no table'})`}.`,
    emptyText: 'No reads in this window.',
  })
}
