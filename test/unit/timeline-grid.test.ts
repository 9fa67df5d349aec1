import { describe, expect, it } from 'vitest'
import type { TimelineRow } from '../../reports/report-rows.js'
import { labelWidth, renderTimeline } from '../../reports/svg-timeline.js'
import { renderTimelineFigures } from '../../reports/timeline-figures.js'
import { BUCKET_MS, chartSpan, chooseBucket, MAX_BUCKETS, type Bucket } from '../../reports/timeline-grid.js'

const T0 = Date.UTC(2026, 10, 27, 4, 0)
const SECOND = 1000
const HOUR = 3_600_000
const DAY = 86_400_000

describe('chooseBucket', () => {
  it('follows the span: seconds for a 98-second breach, minutes for a night, hours for a fortnight, days for months', () => {
    expect(chooseBucket(T0, T0 + 98 * SECOND)).toBe('1s')
    expect(chooseBucket(T0, T0 + 30 * 60 * SECOND)).toBe('5s')
    expect(chooseBucket(T0, T0 + 2 * HOUR)).toBe('30s')
    expect(chooseBucket(T0, T0 + 6 * HOUR)).toBe('1m')
    expect(chooseBucket(T0, T0 + DAY)).toBe('5m')
    expect(chooseBucket(T0, T0 + 14 * DAY)).toBe('1h')
    expect(chooseBucket(T0, T0 + 60 * DAY)).toBe('6h')
    expect(chooseBucket(T0, T0 + 180 * DAY)).toBe('1d')
    expect(chooseBucket(T0, T0 + 3 * 365 * DAY)).toBe('1d')
  })

  it('picks the finest bucket that keeps the answer within MAX_BUCKETS per table', () => {
    const sizes = (Object.keys(BUCKET_MS) as Bucket[]).sort((a, b) => BUCKET_MS[a] - BUCKET_MS[b])
    for (const span of [SECOND, 98 * SECOND, 7 * 60 * SECOND, 5 * HOUR, 3 * DAY, 20 * DAY, 99 * DAY, 101 * DAY]) {
      const b = chooseBucket(T0, T0 + span)
      expect(span / BUCKET_MS[b]).toBeLessThanOrEqual(MAX_BUCKETS)
      const finer = sizes[sizes.indexOf(b) - 1]
      if (finer) expect(span / BUCKET_MS[finer]).toBeGreaterThan(MAX_BUCKETS)
    }
  })

  it('treats an empty or backward span as the finest', () => {
    expect(chooseBucket(T0, T0)).toBe('1s')
    expect(chooseBucket(T0, T0 - HOUR)).toBe('1s')
  })
})

describe('chartSpan', () => {
  const day = { from: Date.UTC(2026, 10, 27), to: Date.UTC(2026, 10, 28) }

  it('zooms to a 98-second breach in a one-day window, with a margin in whole seconds', () => {
    expect(chartSpan(day, { from: T0 + 123, to: T0 + 99 * SECOND })).toEqual({ from: T0 - 10 * SECOND, to: T0 + 109 * SECOND })
  })

  it('keeps the window when the reads fill a good part of it, so quiet hours stay visible', () => {
    const night = { from: Date.UTC(2026, 10, 27), to: Date.UTC(2026, 10, 27, 6) }
    expect(chartSpan(night, { from: Date.UTC(2026, 10, 27, 1), to: Date.UTC(2026, 10, 27, 3) })).toEqual(night)
  })

  it('stays inside the window and takes open ends from the reads', () => {
    expect(chartSpan(day, { from: day.from + SECOND, to: day.from + 3 * SECOND })).toEqual({ from: day.from, to: day.from + 8 * SECOND })
    expect(chartSpan({}, { from: T0, to: T0 + HOUR })).toEqual({ from: T0, to: T0 + HOUR })
    expect(chartSpan(day, null)).toEqual(day)
    expect(chartSpan({ from: day.from }, null)).toBeNull()
  })
})

/** Every <text> of an SVG: its x, y, anchor, font size and content. */
function svgTexts(svg: string): { x: number; y: number; anchor: string; size: number; text: string }[] {
  return [...svg.matchAll(/<text ([^>]*)>([^<]*)<\/text>/g)].map((m) => {
    const attr = (name: string) => new RegExp(`(?:^|\\s)${name}="([^"]*)"`).exec(m[1]!)?.[1]
    return { x: Number(attr('x') ?? NaN), y: Number(attr('y') ?? NaN), anchor: attr('text-anchor') ?? 'start', size: Number(attr('font-size') ?? 11), text: m[2]! }
  })
}

function viewBox(svg: string): { width: number; height: number } {
  const [, , width, height] = /viewBox="([^"]+)"/.exec(svg)![1]!.split(' ').map(Number)
  return { width: width!, height: height! }
}

/** Rows read per bucket over a span; `bucket` chosen as the report chooses it. */
function burst(from: number, to: number, every: number, table = 'applicants'): { rows: TimelineRow[]; bucket: Bucket } {
  const bucket = chooseBucket(from, to)
  const rows: TimelineRow[] = []
  for (let at = from; at < to; at += every) rows.push({ bucket_start: new Date(Math.floor(at / BUCKET_MS[bucket]) * BUCKET_MS[bucket]).toISOString(), database: 'registry', table, reads: 1, rows_read: 25 })
  return { rows, bucket }
}

describe('timeline labels stay inside the chart', () => {
  const cases: [string, number, number, number][] = [
    ['a 98-second breach', T0, T0 + 98 * SECOND, 5 * SECOND],
    ['a night', Date.UTC(2026, 10, 27), Date.UTC(2026, 10, 27, 6), 60 * SECOND],
    ['a fortnight', Date.UTC(2026, 10, 1), Date.UTC(2026, 10, 15), HOUR],
    ['half a year of day bars (dates at both ends)', Date.UTC(2026, 5, 1), Date.UTC(2026, 11, 1), DAY],
  ]
  for (const [name, from, to, every] of cases) {
    it(`for ${name}: every label, the last axis label included, lies within the viewBox`, () => {
      const { rows, bucket } = burst(from, to, every)
      const svg = String(renderTimeline(rows, { bucket, title: 'Rows', span: { from, to } }))
      const box = viewBox(svg)
      const texts = svgTexts(svg).filter((t) => !Number.isNaN(t.x))
      expect(texts.length).toBeGreaterThan(5)
      for (const t of texts) {
        const w = labelWidth(t.text, t.size)
        const left = t.anchor === 'middle' ? t.x - w / 2 : t.anchor === 'end' ? t.x - w : t.x
        expect(left, `${t.text} at x=${t.x}`).toBeGreaterThanOrEqual(0)
        expect(left + w, `${t.text} at x=${t.x}`).toBeLessThanOrEqual(box.width)
        expect(t.y - t.size, `${t.text} at y=${t.y}`).toBeGreaterThanOrEqual(0)
        expect(t.y, `${t.text} at y=${t.y}`).toBeLessThanOrEqual(box.height)
      }
    })
  }

  it('keeps the last axis label inside when its tick is the right edge (regression: it was clipped)', () => {
    const from = Date.UTC(2026, 10, 1)
    const to = Date.UTC(2026, 10, 15)
    const { rows, bucket } = burst(from, to, HOUR)
    const svg = String(renderTimeline(rows, { bucket, title: 'Rows', span: { from, to } }))
    const width = viewBox(svg).width
    const axis = svgTexts(/<g class="x-axis">([\s\S]*?)<\/g>/.exec(svg)![1]!)
    const last = axis.filter((t) => /^\d{4}-\d{2}-\d{2}$/.test(t.text)).at(-1)!
    expect(last.text).toBe('2026-11-15')
    expect(last.x).toBeGreaterThan(width - 60)
    expect(last.x + labelWidth(last.text) / 2).toBeLessThanOrEqual(width)
  })

  it('shortens a table name too long for the legend, and keeps it whole in the printed figures', () => {
    const long = `t_${'x'.repeat(200)}`
    const { rows, bucket } = burst(T0, T0 + HOUR, 60 * SECOND, long)
    const svg = String(renderTimeline(rows, { bucket, title: 'Rows' }))
    const legend = svgTexts(/<g class="legend">([\s\S]*?)<\/g>/.exec(svg)![1]!)
    expect(legend[0]!.text.endsWith('…')).toBe(true)
    expect(legend[0]!.x + labelWidth(legend[0]!.text)).toBeLessThanOrEqual(viewBox(svg).width)
  })
})

describe('a 98-second breach (regression: it collapsed into one 1-hour bar)', () => {
  const from = T0
  const to = T0 + 98 * SECOND
  const window = { from: Date.UTC(2026, 10, 27), to: Date.UTC(2026, 10, 28) }

  it('is drawn in one-second bars over its own span', () => {
    const span = chartSpan(window, { from, to: to + SECOND })!
    const bucket = chooseBucket(span.from, span.to)
    expect(bucket).toBe('1s')
    const { rows } = burst(from, to, 5 * SECOND)
    const svg = String(renderTimeline(rows, { bucket, title: 'Rows', span }))
    expect(svg).toContain('one bar = 1 second')
    expect(svg).toMatch(/aria-label="Rows: 500 rows read from 2026-11-27 03:59:50 to 2026-11-27 04:01:49 UTC, 119 bars of 1 second/)
    // Tick labels carry seconds.
    expect(svg).toMatch(/<g class="x-axis">.*>04:00:00<\/text>/)
  })

  it('prints its figures: every period with a read, summing to the whole', () => {
    const span = chartSpan(window, { from, to: to + SECOND })!
    const { rows } = burst(from, to, 5 * SECOND)
    const table = String(renderTimelineFigures(rows, { id: 'timeline-table', bucket: '1s', span }))
    const periods = [...table.matchAll(/<td class="num" data-col="rows_read">([\d,]+)<\/td>/g)].map((m) => Number(m[1]!.replace(/,/g, '')))
    expect(periods.length).toBeGreaterThanOrEqual(10)
    expect(periods.length).toBeLessThanOrEqual(48)
    expect(periods.reduce((a, b) => a + b, 0)).toBe(500)
    expect(table).toContain('The chart&#39;s figures: every 5 seconds with a read (all in registry.applicants).')
    expect(table).toContain('<td class="time" data-col="from">2026-11-27 04:00:00</td>')
  })
})

describe('printed bar values', () => {
  it('labels every bar when the bars are wide enough, and only the peak otherwise', () => {
    const few = burst(T0, T0 + 12 * HOUR, HOUR)
    const wide = String(renderTimeline(few.rows, { bucket: '1h', title: 'Rows', span: { from: T0, to: T0 + 12 * HOUR } }))
    expect(svgTexts(/<g class="values">([\s\S]*?)<\/g>/.exec(wide)![1]!).map((t) => t.text)).toEqual(Array.from({ length: 12 }, () => '25'))
    const many = burst(T0, T0 + 6 * HOUR, 60 * SECOND)
    const narrow = String(renderTimeline(many.rows, { bucket: many.bucket, title: 'Rows', span: { from: T0, to: T0 + 6 * HOUR } }))
    expect(svgTexts(/<g class="values">([\s\S]*?)<\/g>/.exec(narrow)![1]!)).toHaveLength(1)
  })

  it('breaks the figures down by table when there are several', () => {
    const rows: TimelineRow[] = [
      { bucket_start: '2026-11-27T04:00:00Z', database: 'registry', table: 'applicants', reads: 3, rows_read: 3000 },
      { bucket_start: '2026-11-27T04:00:00Z', database: 'registry', table: 'documents', reads: 1, rows_read: 10 },
    ]
    const table = String(renderTimelineFigures(rows, { id: 't', bucket: '1h' }))
    expect(table).toContain('<td class="num" data-col="rows_read">3,010</td>')
    expect(table).toContain('<td class="" data-col="by_table">registry.applicants: 3,000 rows in 3 reads; registry.documents: 10 rows in 1 reads</td>')
  })
})
