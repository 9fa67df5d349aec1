/**
 * The time grid of a report's timeline: which bucket the timeline query is
 * asked for, which span the chart shows, and how rows fall into bars. Pure
 * (rows and epoch ms in, numbers out), so the chart and the printed table of
 * its figures are drawn from the same bars on any machine.
 */
import { BUCKETS } from '../queries/buckets.js'
import type { TimelineRow } from './report-rows.js'

/** The bucket sizes the timeline queries accept, in ms: derived, so a bucket added there draws here. */
export type Bucket = keyof typeof BUCKETS
export const BUCKET_MS = Object.freeze(Object.fromEntries(Object.entries(BUCKETS).map(([k, s]) => [k, s * 1000])) as Record<Bucket, number>)

const SECOND = 1000
const MINUTE = 60_000
const HOUR = 3_600_000
const DAY = 86_400_000

/** Finest first, so the first bucket that fits is the finest that does. */
const BY_SIZE = (Object.keys(BUCKET_MS) as Bucket[]).sort((a, b) => BUCKET_MS[a] - BUCKET_MS[b])

/**
 * At most this many buckets per table in a timeline answer: fine enough that
 * the chart (up to 200 bars) merges rather than stretches, small enough to
 * send over the owner socket in one piece.
 */
export const MAX_BUCKETS = 400

/**
 * The finest bucket that covers [fromMs, toMs) in at most MAX_BUCKETS
 * buckets: seconds for a 98-second scrape, minutes for a night, hours for a
 * fortnight, days for months. A span longer than MAX_BUCKETS days still gets
 * days (the coarsest bucket); the chart merges them into wider bars.
 */
export function chooseBucket(fromMs: number, toMs: number): Bucket {
  const span = Math.max(toMs - fromMs, 1)
  return BY_SIZE.find((b) => span / BUCKET_MS[b] <= MAX_BUCKETS) ?? BY_SIZE[BY_SIZE.length - 1]!
}

/** Epoch-ms span, both ends known. */
export interface Span {
  from: number
  to: number
}

/** A window as given: either end may be open. */
export interface OpenWindow {
  from?: number | undefined
  to?: number | undefined
}

/**
 * When the reads fill less than this share of the window, the chart shows
 * the reads' own span: a 98-second breach in a one-day window would
 * otherwise be one bar among 200 empty ones.
 */
const ZOOM_BELOW = 1 / 8

/**
 * The span the chart shows, from the window asked about and the span the
 * reads actually cover (`activity`, first read to just after the last; null
 * when nothing was read). The window when the reads fill a good part of it,
 * so quiet hours around a night's scrape stay visible; otherwise the
 * activity with a margin of a tenth of its length (whole seconds, at least 5) on each
 * side, inside the window. Open window ends take the activity's.
 */
export function chartSpan(window: OpenWindow, activity: Span | null): Span | null {
  if (!activity) return window.from !== undefined && window.to !== undefined ? { from: window.from, to: window.to } : null
  const from = window.from ?? activity.from
  const to = window.to ?? activity.to
  const length = Math.max(activity.to - activity.from, SECOND)
  if (length >= (to - from) * ZOOM_BELOW) return { from, to }
  // Whole seconds, so the span prints as the times it is.
  const margin = Math.max(Math.ceil(length / 10 / SECOND) * SECOND, 5 * SECOND)
  return { from: Math.max(from, Math.floor((activity.from - margin) / SECOND) * SECOND), to: Math.min(to, Math.ceil((activity.to + margin) / SECOND) * SECOND) }
}

/** `2026-11-27T01:00:00.000000Z` or ClickHouse's `2026-11-27 01:00:00` → epoch ms, read as UTC. */
export function parseUtc(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text)
  const ms = m ? Date.parse(`${m[1]}T${m[2]}${(m[3] ?? '').slice(0, 4)}${m[4] ?? 'Z'}`) : Number.NaN
  if (Number.isNaN(ms)) throw new RangeError(`not an ISO-8601 UTC time: ${JSON.stringify(text)}`)
  return ms
}

// Bar widths a reader can name ("one bar = 15 minutes"); merged bars snap to
// the smallest of these that is a multiple of the query's bucket.
const NICE_MS = [
  ...[1, 2, 5, 10, 15, 30].map((s) => s * SECOND),
  ...[1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10_080, 20_160, 40_320, 80_640, 161_280].map((m) => m * MINUTE),
]

/** One bar: its start and, per series, what the rows in it add up to. */
export interface Bin {
  start: number
  values: { reads: number; rows_read: number }[]
}

export interface Grid {
  start: number
  end: number
  /** Bar width in ms: the bucket, or a nice multiple of it. */
  width: number
  bins: Bin[]
}

/**
 * Places rows on a regular time grid from the first bucket to the end of the
 * last, stretched to cover `span`: empty periods stay visible as gaps, which
 * is how a night-time scrape stands out. Too many buckets are merged into
 * wider, aligned bars (at most `maxBars`).
 */
export function binTimeline(rows: readonly TimelineRow[], options: { bucket: Bucket; maxBars: number; span?: OpenWindow | undefined; seriesIndex: (r: TimelineRow) => number }): Grid {
  const bucketMs = BUCKET_MS[options.bucket]
  const starts = rows.map((r) => parseUtc(r.bucket_start))
  // reduce, not Math.min(...): a year of minute buckets is more arguments than a call takes.
  const first = starts.reduce((a, b) => Math.min(a, b), options.span?.from ?? Infinity)
  const last = starts.reduce((a, b) => Math.max(a, b + bucketMs), options.span?.to ?? -Infinity)
  const width = barWidth(bucketMs, last - first, options.maxBars)
  const start = Math.floor(first / width) * width
  const end = Math.max(Math.ceil(last / width) * width, start + width)
  const seriesCount = rows.reduce((n, r) => Math.max(n, options.seriesIndex(r) + 1), 1)
  const bins: Bin[] = Array.from({ length: (end - start) / width }, (_, i) => ({
    start: start + i * width,
    values: Array.from({ length: seriesCount }, () => ({ reads: 0, rows_read: 0 })),
  }))
  rows.forEach((r, i) => {
    const v = bins[Math.floor((starts[i]! - start) / width)]!.values[options.seriesIndex(r)]!
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

/** A time shown at the precision the bars have: seconds for sub-minute bars, minutes for sub-day bars, the date for day bars. */
export function stamp(ms: number, width: number): string {
  const iso = new Date(ms).toISOString()
  if (width >= DAY) return iso.slice(0, 10)
  return `${iso.slice(0, 10)} ${iso.slice(11, width % MINUTE === 0 ? 16 : 19)}`
}

/** "1 hour", "2 minutes", "5 seconds". */
export function durationText(ms: number): string {
  const [name, size] = ms % DAY === 0 ? ['day', DAY] : ms % HOUR === 0 ? ['hour', HOUR] : ms % MINUTE === 0 ? ['minute', MINUTE] : ['second', SECOND]
  const n = ms / size
  return `${n} ${name}${n === 1 ? '' : 's'}`
}
