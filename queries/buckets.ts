import { z } from 'zod'

/** Time buckets for timelines, in seconds: from 1 s (a 98-second scrape) to 1 day (months). */
export const BUCKETS = { '1s': 1, '5s': 5, '10s': 10, '30s': 30, '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '6h': 21_600, '1d': 86_400 } as const

export const bucket = z.enum(Object.keys(BUCKETS) as [keyof typeof BUCKETS, ...(keyof typeof BUCKETS)[]]).default('1h')

/** Start of the UTC bucket holding occurred_at; bound seconds, so no SQL text varies. */
export const BUCKET_START_SQL = `toStartOfInterval(occurred_at, toIntervalSecond({bucket_seconds:UInt32}), 'UTC')`

export interface TimelineRow {
  bucket_start: string
  database: string
  table: string
  reads: number
  rows_read: number
}

export const TIMELINE_COLUMNS = ['bucket_start', 'database', 'table', 'reads', 'rows_read'] as const
