/**
 * The timeline chart of a report: an inline <svg> of stacked bars, one colour
 * per table, over UTC time. Pure: rows in, markup out, so the same rows draw
 * the same chart on any machine (no locale, no time zone, no clock).
 */
import { BUCKETS } from '../queries/buckets.js'
import { formatCount, html, type SafeHtml } from './html.js'
import type { TimelineRow } from './report-rows.js'

/** The bucket sizes the timeline queries accept, in ms: derived, so a bucket added there draws here. */
export type Bucket = keyof typeof BUCKETS
export const BUCKET_MS = Object.freeze(Object.fromEntries(Object.entries(BUCKETS).map(([k, s]) => [k, s * 1000])) as Record<Bucket, number>)

const HOUR = 3_600_000
const DAY = 86_400_000

/**
 * Bucket for a window: minutes show a night's scrape page by page, hours a
 * fortnight, days anything longer; each keeps the query's answer small.
 */
export function chooseBucket(fromMs: number, toMs: number): Bucket {
  const span = toMs - fromMs
  if (span <= 6 * HOUR) return '1m'
  if (span <= 14 * DAY) return '1h'
  return '1d'
}

/** `2026-11-27T01:00:00.000000Z` or ClickHouse's `2026-11-27 01:00:00` → epoch ms, read as UTC. */
export function parseUtc(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text)
  const ms = m ? Date.parse(`${m[1]}T${m[2]}${(m[3] ?? '').slice(0, 4)}${m[4] ?? 'Z'}`) : Number.NaN
  if (Number.isNaN(ms)) throw new RangeError(`not an ISO-8601 UTC time: ${JSON.stringify(text)}`)
  return ms
}

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
   * The window asked about (epoch ms, either end optional): the axis covers
   * it even where nothing was read, so quiet hours show as quiet.
   */
  window?: { from?: number | undefined; to?: number | undefined }
}

// Bar widths a reader can name ("one bar = 15 minutes"); merged bars snap to
// the smallest of these that is a multiple of the query's bucket.
const NICE_MS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10_080, 20_160, 40_320, 80_640, 161_280].map((m) => m * 60_000)
// Okabe–Ito (and Tol's indigo for a seventh): told apart with the common
// colour-vision deficiencies; the legend and each bar's tooltip also name the table.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#332288']
const OTHER_COLOUR = '#8c959f'
const W = 960
const MARGIN = { left: 76, right: 20, top: 18, bottom: 58 }
const PLOT_H = 240

/** The chart as inline SVG markup (role="img", with a text alternative and per-bar tooltips). */
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
  const grid = binRows(rows, options.bucket, options.maxBars ?? 200, series.indexOf, options.window ?? {})
  const totals = grid.bins.map((b) => b.values.reduce((s, v) => s + v[metric], 0))
  const peak = Math.max(...totals)
  const peakAt = grid.start + totals.indexOf(peak) * grid.width
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

  const yTicks = y.ticks.map((t) => {
    const ty = fix(bottom - (t / y.max) * PLOT_H)
    return html`<line x1="${MARGIN.left}" x2="${W - MARGIN.right}" y1="${ty}" y2="${ty}" stroke="${t === 0 ? '#57606a' : '#e4e8ec'}"/><text x="${MARGIN.left - 8}" y="${ty}" dy="0.32em" text-anchor="end">${formatCount(t)}</text>`
  })
  const xTicks = timeTicks(grid.start, grid.end).map((t, i, all) => {
    const tx = fix(MARGIN.left + ((t.at - grid.start) / (grid.end - grid.start)) * plotW)
    const showDate = t.dateLine && (i === 0 || all[i - 1]!.date !== t.date)
    return html`<line x1="${tx}" x2="${tx}" y1="${bottom}" y2="${bottom + 5}" stroke="#57606a"/><text x="${tx}" y="${bottom + 18}" text-anchor="middle">${t.main}</text>${showDate ? html`<text x="${tx}" y="${bottom + 32}" text-anchor="middle" fill="#57606a">${t.date}</text>` : null}`
  })
  const legendItems = legend.items.map(
    (it, s) => html`<rect x="${it.x}" y="${height - legend.height + it.y}" width="12" height="12" fill="${series.colours[s]}"/><text x="${it.x + 17}" y="${height - legend.height + it.y + 10}">${series.names[s]}</text>`,
  )

  return html`<svg class="timeline" role="img" aria-label="${label}" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif" font-size="11" fill="#1b1f24">
<title>${label}</title>
<g class="y-axis">${yTicks}</g>
<text transform="translate(16 ${MARGIN.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle" fill="#57606a">${metricLabel}</text>
<g class="bars">${bars}</g>
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
  const totals = new Map<string, number>()
  for (const r of rows) totals.set(tableKey(r), (totals.get(tableKey(r)) ?? 0) + r[metric])
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k]) => k)
  const kept = ranked.length > PALETTE.length ? ranked.slice(0, PALETTE.length - 1) : ranked
  const index = new Map(kept.map((k, i) => [k, i]))
  const names = ranked.length > kept.length ? [...kept, `${ranked.length - kept.length} other tables`] : kept
  return {
    names,
    colours: names.map((_, i) => (i < kept.length ? PALETTE[i]! : OTHER_COLOUR)),
    indexOf: (r) => index.get(tableKey(r)) ?? kept.length,
  }
}

function tableKey(r: TimelineRow): string {
  return `${r.database}.${r.table}`
}

interface Bin {
  start: number
  values: { reads: number; rows_read: number }[]
}

/**
 * Places rows on a regular time grid from the first bucket to the end of the
 * last: empty periods stay visible as gaps, which is how a night-time
 * scrape stands out. Too many buckets are merged into wider, aligned bars.
 */
function binRows(rows: readonly TimelineRow[], bucket: Bucket, maxBars: number, seriesIndex: (r: TimelineRow) => number, window: TimelineOptions['window'] & object) {
  const bucketMs = BUCKET_MS[bucket]
  const starts = rows.map((r) => parseUtc(r.bucket_start))
  // reduce, not Math.min(...): a year of minute buckets is more arguments than a call takes.
  const first = starts.reduce((a, b) => Math.min(a, b), window.from ?? Infinity)
  const last = starts.reduce((a, b) => Math.max(a, b + bucketMs), window.to ?? -Infinity)
  const width = barWidth(bucketMs, last - first, maxBars)
  const start = Math.floor(first / width) * width
  const end = Math.max(Math.ceil(last / width) * width, start + width)
  const seriesCount = rows.reduce((n, r) => Math.max(n, seriesIndex(r) + 1), 1)
  const bins: Bin[] = Array.from({ length: (end - start) / width }, (_, i) => ({
    start: start + i * width,
    values: Array.from({ length: seriesCount }, () => ({ reads: 0, rows_read: 0 })),
  }))
  rows.forEach((r, i) => {
    const v = bins[Math.floor((starts[i]! - start) / width)]!.values[seriesIndex(r)]!
    v.reads += r.reads
    v.rows_read += r.rows_read
  })
  return { start, end, width, bins }
}

/** The narrowest readable bar width (a multiple of the bucket) that fits the span in maxBars bars. */
function barWidth(bucketMs: number, span: number, maxBars: number): number {
  // Alignment can add one bar at each end; leave room for it.
  const needed = span / Math.max(1, maxBars - 2)
  const nice = NICE_MS.find((w) => w >= bucketMs && w % bucketMs === 0 && w >= needed)
  return nice ?? Math.ceil(needed / DAY) * DAY
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

const TICK_MS = [1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10_080, 20_160, 43_200, 129_600, 525_600].map((m) => m * 60_000)

/** At most 9 x-axis ticks on aligned UTC boundaries; dates under times where the day changes. */
function timeTicks(start: number, end: number): { at: number; main: string; date: string; dateLine: boolean }[] {
  const step = TICK_MS.find((s) => (end - start) / s <= 8) ?? TICK_MS[TICK_MS.length - 1]!
  const ticks = []
  for (let at = Math.ceil(start / step) * step; at <= end; at += step) {
    const iso = new Date(at).toISOString()
    const date = iso.slice(0, 10)
    ticks.push(step >= DAY ? { at, main: date, date, dateLine: false } : { at, main: iso.slice(11, 16), date, dateLine: true })
  }
  return ticks
}

function layoutLegend(names: readonly string[]): { height: number; items: { x: number; y: number }[] } {
  const items: { x: number; y: number }[] = []
  let x = MARGIN.left
  let y = 4
  for (const name of names) {
    // No text metrics in a pure function: ~6.2 px per character at 11 px is generous for these fonts.
    const w = 17 + Math.min(name.length, 60) * 6.2 + 22
    if (x + w > W - MARGIN.right && x > MARGIN.left) {
      x = MARGIN.left
      y += 18
    }
    items.push({ x, y })
    x += w
  }
  return { height: y + 22, items }
}

/** A time shown at the precision the bars have: minutes for sub-day bars, the date for day bars. */
function stamp(ms: number, width: number): string {
  const iso = new Date(ms).toISOString()
  return width >= DAY ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`
}

function durationText(ms: number): string {
  const unit = ms % DAY === 0 ? ['day', DAY] : ms % HOUR === 0 ? ['hour', HOUR] : ['minute', 60_000]
  const n = ms / (unit[1] as number)
  return `${n} ${unit[0]}${n === 1 ? '' : 's'}`
}

function fix(n: number): string {
  return n.toFixed(1).replace(/\.0$/, '')
}
