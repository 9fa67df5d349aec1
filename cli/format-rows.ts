export const OUTPUT_FORMATS = ['table', 'csv', 'json', 'ndjson'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

/** Renders rows for a terminal (aligned table) or a pipe (CSV, JSON, NDJSON). */
export function formatRows(objects: readonly object[], columns: readonly string[], format: OutputFormat): string {
  const rows = objects as readonly Record<string, unknown>[]
  switch (format) {
    case 'json':
      return JSON.stringify(rows, null, 2)
    case 'ndjson':
      return rows.map((r) => JSON.stringify(r)).join('\n')
    case 'csv':
      return [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\n')
    case 'table':
      return table(rows, columns)
  }
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
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

function table(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const cells = rows.map((r) => columns.map((c) => text(r[c])))
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((row) => row[i]!.length))))
  const fit = (s: string, w: number) => (s.length > w ? `${s.slice(0, w - 1)}…` : s.padEnd(w))
  const line = (values: string[]) => values.map((v, i) => fit(v, widths[i]!)).join('  ').trimEnd()
  return [line([...columns]), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line), `(${rows.length} rows)`].join('\n')
}
