/**
 * The timeline chart of a report: an inline <svg> of stacked bars, one colour
 * per table, over UTC time. Pure: rows in, markup out, so the same rows draw
 * the same chart on any machine (no locale, no time zone, no clock).
 */
import { formatCount, html, type SafeHtml } from './html.js'
import type { TimelineRow } from './report-rows.js'
import { binTimeline, durationText, stamp, type Bucket, type OpenWindow } from './timeline-grid.js'

export interface TimelineOptions {
  /** The bucket the rows were grouped by. */
  bucket: Bucket
  /** What the bar heights count. @default 'rows_read' */
  metric?: 'reads' | 'rows_read'
  /** Start of the accessible name, e.g. "Rows read by clerk.marta". */
  title: string
  /** Adjacent buckets are merged until at most this many bars remain. @default 200 */
  maxBars?: number
  /**
   * The span the axis covers (epoch ms, either end optional; chartSpan()
   * chooses it), even where nothing was read, so quiet hours show as quiet.
   */
  span?: OpenWindow | undefined
}

// Okabe–Ito (and Tol's indigo for a seventh): told apart with the common
// colour-vision deficiencies; the legend and the printed figures name the table.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#332288']
const OTHER_COLOUR = '#8c959f'
const W = 960
const MARGIN = { left: 76, right: 20, top: 22, bottom: 58 }
const PLOT_H = 240
const FONT_SIZE = 11
/**
 * Width of one character as a share of the font size: no text metrics in a
 * pure function, and 0.62 em is wider than the digits and lower-case
 * letters of the fonts the chart names, so a label estimated inside the
 * viewBox is inside it.
 */
const CHAR_EM = 0.62
/** Bars at least this wide carry their total above them; narrower ones only the peak does. */
const LABELLED_SLOT = 34
/** Longest legend text that fits one legend row. */
const LEGEND_CHARS = Math.floor((W - MARGIN.left - MARGIN.right - 17 - 22) / (FONT_SIZE * CHAR_EM))

/** Estimated width of a label in px. */
export function labelWidth(text: string, fontSize = FONT_SIZE): number {
  return text.length * fontSize * CHAR_EM
}

/**
 * The x at which a centred label of `text` stays inside the chart: a label
 * at the last tick (or over the right-most bar) would otherwise run past the
 * viewBox and be cut off in the browser and on paper.
 */
function insideX(x: number, text: string, fontSize = FONT_SIZE): number {
  const half = labelWidth(text, fontSize) / 2
  return Math.min(Math.max(x, half + 2), W - half - 2)
}

/** The chart as inline SVG markup (role="img", with a text alternative, bar totals and per-bar tooltips). */
export function renderTimeline(rows: readonly TimelineRow[], options: TimelineOptions): SafeHtml {
  const metric = options.metric ?? 'rows_read'
  const metricLabel = metric === 'reads' ? 'reads' : 'rows read'
  if (rows.length === 0) {
    const label = `${options.title}: no reads in this window`
    return html`<svg class="timeline no-data" role="img" aria-label="${label}" viewBox="0 0 ${W} 90" width="${W}" height="90">
<title>${label}</title>
<rect x="1" y="1" width="${W - 2}" height="88" fill="#f6f8fa" stroke="#d0d7de" stroke-dasharray="6 4"/>
<text x="${W / 2}" y="50" text-anchor="middle" font-size="15" fill="#57606a">No reads in this window</text>
</svg>`
  }

  const series = seriesOf(rows, metric)
  const grid = binTimeline(rows, { bucket: options.bucket, maxBars: options.maxBars ?? 200, span: options.span, seriesIndex: series.indexOf })
  const totals = grid.bins.map((b) => b.values.reduce((s, v) => s + v[metric], 0))
  const peak = Math.max(...totals)
  const peakIndex = totals.indexOf(peak)
  const peakAt = grid.start + peakIndex * grid.width
  const total = totals.reduce((s, v) => s + v, 0)
  const y = yScale(peak)
  const legend = layoutLegend(series.names)
  const height = MARGIN.top + PLOT_H + MARGIN.bottom + legend.height
  const plotW = W - MARGIN.left - MARGIN.right
  const slotW = plotW / grid.bins.length
  // Thin bars still get a pixel: one read among a night of scraping must not vanish.
  const barW = Math.min(48, Math.max(1, slotW * 0.82))
  const bottom = MARGIN.top + PLOT_H
  const label =
    `${options.title}: ${formatCount(total)} ${metricLabel} from ${stamp(grid.start, grid.width)} to ${stamp(grid.end, grid.width)} UTC, ` +
    `${grid.bins.length} bars of ${durationText(grid.width)}; peak ${formatCount(peak)} at ${stamp(peakAt, grid.width)} UTC; ${series.names.length} table${series.names.length === 1 ? '' : 's'}.`

  const bars = grid.bins.map((bin, i) => {
    const x = MARGIN.left + i * slotW + (slotW - barW) / 2
    let top = bottom
    const when = `${stamp(bin.start, grid.width)}–${stamp(bin.start + grid.width, grid.width)} UTC`
    return bin.values.map((v, s) => {
      if (v[metric] === 0) return null
      const h = Math.max(1, (v[metric] / y.max) * PLOT_H)
      top -= h
      const tip = `${when}\n${series.names[s]}: ${formatCount(v.rows_read)} rows read in ${formatCount(v.reads)} reads`
      return html`<rect x="${fix(x)}" y="${fix(top)}" width="${fix(barW)}" height="${fix(h)}" fill="${series.colours[s]}"><title>${tip}</title></rect>`
    })
  })
  // Printed figures, not only tooltips: every bar's total when the bars are
  // wide enough to carry one, otherwise the peak's (the table under the chart has the rest).
  const values = totals.map((t, i) => {
    if (t === 0 || (slotW < LABELLED_SLOT && i !== peakIndex)) return null
    const text = formatCount(t)
    const cx = insideX(MARGIN.left + (i + 0.5) * slotW, text, 10)
    const ty = bottom - Math.max(1, (t / y.max) * PLOT_H) - 4
    return html`<text x="${fix(cx)}" y="${fix(ty)}" text-anchor="middle" font-size="10" font-weight="600">${text}</text>`
  })

  const yTicks = y.ticks.map((t) => {
    const ty = fix(bottom - (t / y.max) * PLOT_H)
    return html`<line x1="${MARGIN.left}" x2="${W - MARGIN.right}" y1="${ty}" y2="${ty}" stroke="${t === 0 ? '#57606a' : '#e4e8ec'}"/><text x="${MARGIN.left - 8}" y="${ty}" dy="0.32em" text-anchor="end">${formatCount(t)}</text>`
  })
  const xTicks = timeTicks(grid.start, grid.end).map((t, i, all) => {
    const at = MARGIN.left + ((t.at - grid.start) / (grid.end - grid.start)) * plotW
    const showDate = t.dateLine && (i === 0 || all[i - 1]!.date !== t.date)
    return html`<line x1="${fix(at)}" x2="${fix(at)}" y1="${bottom}" y2="${bottom + 5}" stroke="#57606a"/><text x="${fix(insideX(at, t.main))}" y="${bottom + 18}" text-anchor="middle">${t.main}</text>${
      showDate ? html`<text x="${fix(insideX(at, t.date))}" y="${bottom + 32}" text-anchor="middle" fill="#57606a">${t.date}</text>` : null
    }`
  })
  const legendItems = legend.items.map(
    (it, s) => html`<rect x="${it.x}" y="${height - legend.height + it.y}" width="12" height="12" fill="${series.colours[s]}"/><text x="${it.x + 17}" y="${height - legend.height + it.y + 10}">${it.text}</text>`,
  )

  return html`<svg class="timeline" role="img" aria-label="${label}" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif" font-size="${FONT_SIZE}" fill="#1b1f24">
<title>${label}</title>
<g class="y-axis">${yTicks}</g>
<text transform="translate(16 ${MARGIN.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle" fill="#57606a">${metricLabel}</text>
<g class="bars">${bars}</g>
<g class="values">${values}</g>
<g class="x-axis">${xTicks}</g>
<text x="${MARGIN.left + plotW / 2}" y="${bottom + 50}" text-anchor="middle" fill="#57606a">time (UTC) — one bar = ${durationText(grid.width)}</text>
<g class="legend">${legendItems}</g>
</svg>`
}

interface Series {
  names: string[]
  colours: string[]
  indexOf(row: TimelineRow): number
}

/** One series per table, largest first; past the palette, the smallest share one "other tables" series. */
function seriesOf(rows: readonly TimelineRow[], metric: 'reads' | 'rows_read'): Series {
  const ranked = rankTables(rows, metric)
  const kept = ranked.length > PALETTE.length ? ranked.slice(0, PALETTE.length - 1) : ranked
  const index = new Map(kept.map((k, i) => [k, i]))
  const names = ranked.length > kept.length ? [...kept, `${ranked.length - kept.length} other tables`] : kept
  return {
    names,
    colours: names.map((_, i) => (i < kept.length ? PALETTE[i]! : OTHER_COLOUR)),
    indexOf: (r) => index.get(tableKey(r)) ?? kept.length,
  }
}

/** `database.table` of every table in the rows, the most `metric` first (ties by name). */
export function rankTables(rows: readonly TimelineRow[], metric: 'reads' | 'rows_read'): string[] {
  const totals = new Map<string, number>()
  for (const r of rows) totals.set(tableKey(r), (totals.get(tableKey(r)) ?? 0) + r[metric])
  return [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k]) => k)
}

export function tableKey(r: TimelineRow): string {
  return `${r.database}.${r.table}`
}

/** 0..max with 4–6 round steps (1, 2 or 5 × 10^k). */
function yScale(peak: number): { max: number; ticks: number[] } {
  if (peak <= 0) return { max: 1, ticks: [0, 1] }
  const raw = peak / 5
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!)
  const max = Math.ceil(peak / step) * step
  return { max, ticks: Array.from({ length: Math.round(max / step) + 1 }, (_, i) => i * step) }
}

const MINUTE = 60_000
const DAY = 86_400_000
const TICK_MS = [
  ...[1, 5, 10, 15, 30].map((s) => s * 1000),
  ...[1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10_080, 20_160, 43_200, 129_600, 525_600].map((m) => m * MINUTE),
]

/** At most 9 x-axis ticks on aligned UTC boundaries; seconds when the ticks are seconds apart; dates under times where the day changes. */
function timeTicks(start: number, end: number): { at: number; main: string; date: string; dateLine: boolean }[] {
  const step = TICK_MS.find((s) => (end - start) / s <= 8) ?? TICK_MS[TICK_MS.length - 1]!
  const ticks = []
  for (let at = Math.ceil(start / step) * step; at <= end; at += step) {
    const iso = new Date(at).toISOString()
    const date = iso.slice(0, 10)
    ticks.push(step >= DAY ? { at, main: date, date, dateLine: false } : { at, main: iso.slice(11, step < MINUTE ? 19 : 16), date, dateLine: true })
  }
  return ticks
}

/** Legend entries in rows that fit the width; a name too long for one row is shortened (the table under the chart has it whole). */
function layoutLegend(names: readonly string[]): { height: number; items: { x: number; y: number; text: string }[] } {
  const items: { x: number; y: number; text: string }[] = []
  let x = MARGIN.left
  let y = 4
  for (const name of names) {
    const text = name.length > LEGEND_CHARS ? `${name.slice(0, LEGEND_CHARS - 1)}…` : name
    const w = 17 + labelWidth(text) + 22
    if (x + w > W - MARGIN.right && x > MARGIN.left) {
      x = MARGIN.left
      y += 18
    }
    items.push({ x, y, text })
    x += w
  }
  return { height: y + 22, items }
}

function fix(n: number): string {
  return n.toFixed(1).replace(/\.0$/, '')
}
