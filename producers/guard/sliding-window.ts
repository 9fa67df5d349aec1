import { WINDOWS, type TakeRequest, type TakeResult, type WindowSeconds } from './budget-store.js'

/**
 * The guard's counting rule, shared by the in-process store and the Redis
 * script (producers/guard/redis-budget-store.ts says it again in Lua).
 *
 * A window of W ms is cut into N buckets of g = W / N ms (N = 60: 1 s
 * buckets for the minute, 1 min buckets for the hour). A read at time t
 * lands in bucket b = floor(t / g). The window's count at t is the sum of
 * buckets b - N … b: N + 1 buckets, the current one, the N - 1 full ones
 * before it, and the oldest one, which lies partly outside [t - W, t] and is
 * counted whole. A read is taken only if that sum plus its records stays
 * within the limit.
 *
 * Guarantee: in ANY interval of W ms, wherever it starts, the records taken
 * never exceed the limit. Proof: an interval [s, s + W] touches buckets
 * floor(s/g) … floor(s/g) + N; the last read taken in it, at bucket b,
 * counted buckets b - N … b, which include every bucket of the interval up
 * to b, so everything taken in the interval was within that sum, which was
 * within the limit. A burst straddling a bucket or window boundary cannot
 * reach 2× the budget (the fixed-window flaw), nor 1× plus anything.
 * The price: a record stays counted for between W and W + g ms, so a
 * principal at the limit waits up to one bucket (1 s, or 1 min) longer than
 * an exact sliding log would make it wait. Memory is at most N + 1 counters
 * per window per principal, whatever the read rate.
 */

/** Buckets of one window that still count: ascending bucket numbers and their records. */
export interface Series {
  buckets: number[]
  counts: number[]
}

export function emptySeries(): Series {
  return { buckets: [], counts: [] }
}

/** Drops buckets older than b - N and returns the records of the rest. */
export function pruneSeries(series: Series, windowSeconds: WindowSeconds, nowMs: number): number {
  const { bucketMs, buckets: n } = WINDOWS[windowSeconds]
  const oldest = Math.floor(nowMs / bucketMs) - n
  let drop = 0
  while (drop < series.buckets.length && series.buckets[drop]! < oldest) drop += 1
  if (drop > 0) {
    series.buckets.splice(0, drop)
    series.counts.splice(0, drop)
  }
  let sum = 0
  for (const c of series.counts) sum += c
  return sum
}

/** Adds records to the current bucket (series already pruned). */
export function addToSeries(series: Series, windowSeconds: WindowSeconds, nowMs: number, records: number): void {
  const bucket = Math.floor(nowMs / WINDOWS[windowSeconds].bucketMs)
  const last = series.buckets.length - 1
  if (last >= 0 && series.buckets[last] === bucket) series.counts[last]! += records
  else {
    series.buckets.push(bucket)
    series.counts.push(records)
  }
}

/**
 * Ms until enough of the oldest buckets have left the window for `cost`
 * more records to fit (series pruned, `sum` its records); Infinity when the
 * cost alone is over the limit.
 */
export function retryAfter(series: Series, windowSeconds: WindowSeconds, nowMs: number, sum: number, cost: number, limit: number): number {
  if (cost > limit) return Number.POSITIVE_INFINITY
  const { bucketMs, buckets: n } = WINDOWS[windowSeconds]
  let left = sum
  for (let i = 0; i < series.buckets.length; i++) {
    left -= series.counts[i]!
    // Bucket k stops counting once the current bucket is past k + N.
    if (left + cost <= limit) return Math.max(0, (series.buckets[i]! + n + 1) * bucketMs - nowMs)
  }
  return 0
}

/** One take against a principal's series, one per limited window (the in-process store's whole decision). */
export function takeFromSeries(seriesOf: (w: WindowSeconds) => Series, request: TakeRequest, nowMs: number): TakeResult {
  let over: TakeResult['over']
  let wait = 0
  const sums: number[] = []
  for (const { windowSeconds, limit } of request.limits) {
    const series = seriesOf(windowSeconds)
    const sum = pruneSeries(series, windowSeconds, nowMs)
    sums.push(sum)
    if (sum + request.cost > limit) {
      over ??= { windowSeconds, limit, observed: sum + request.cost }
      wait = Math.max(wait, retryAfter(series, windowSeconds, nowMs, sum, request.cost, limit))
    }
  }
  const taken = over === undefined || request.force
  if (taken && request.cost > 0) for (const { windowSeconds } of request.limits) addToSeries(seriesOf(windowSeconds), windowSeconds, nowMs, request.cost)
  return { taken, over, retryAfterMs: taken ? 0 : wait }
}
