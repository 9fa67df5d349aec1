import { ReadtrailError } from './errors.js'

const UNITS: Readonly<Record<string, number>> = Object.freeze({ ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 })

/**
 * Milliseconds of a duration written as a number and a unit: `500ms`, `30s`,
 * `5m`, `1h`, `1d`. Bounded, so a typo never means "never" or "always".
 */
export function parseDuration(text: string, flag: string, bounds: { minMs: number; maxMs: number }): number {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text.trim())
  const ms = m ? Number(m[1]) * UNITS[m[2]!]! : NaN
  if (!Number.isFinite(ms) || ms < bounds.minMs || ms > bounds.maxMs) {
    throw new ReadtrailError(
      'USAGE',
      `${flag} ${JSON.stringify(text)}: expected a duration like 30s, 5m or 1h between ${bounds.minMs} ms and ${bounds.maxMs / 3_600_000} h`,
    )
  }
  return ms
}
