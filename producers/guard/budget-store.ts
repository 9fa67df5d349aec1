/**
 * Where budgets are counted: in this process, or in Redis for every
 * instance at once. Both count the same way (producers/guard/sliding-window.ts).
 */

/** The two windows a budget can limit, each cut into 60 buckets. */
export const WINDOWS = Object.freeze({
  60: Object.freeze({ seconds: 60, bucketMs: 1000, buckets: 60 }),
  3600: Object.freeze({ seconds: 3600, bucketMs: 60_000, buckets: 60 }),
})
export type WindowSeconds = keyof typeof WINDOWS

export interface WindowLimit {
  windowSeconds: WindowSeconds
  /** Records the window may hold. */
  limit: number
}

export interface TakeRequest {
  /** The principal's counter for one budget (producers/guard/budget-key.ts): never a raw principal id. */
  key: string
  /** Records this read returns. */
  cost: number
  /** Shortest window first: the first one crossed is the one reported. */
  limits: readonly WindowLimit[]
  /** Count the read even when it crosses a limit (action `alert`: the read goes on). */
  force: boolean
}

export interface TakeResult {
  /** True when the read was counted: it fits every window, or `force`. */
  taken: boolean
  /** The first window the read crosses, with what it would hold with this read. */
  over: { windowSeconds: WindowSeconds; limit: number; observed: number } | undefined
  /** Not taken: ms until every crossed window has room for this cost; Infinity when the cost alone is over a limit. */
  retryAfterMs: number
}

export interface BudgetStore {
  readonly kind: 'memory' | 'redis'
  /**
   * Atomically checks the read against every window and counts it if it
   * fits (or `force`). Throws (or rejects) BudgetStoreDown when it cannot
   * answer; the budget's onStoreDown policy decides then.
   */
  take(request: TakeRequest): TakeResult | Promise<TakeResult>
  close(): Promise<void>
}

/** The store did not answer (Redis unreachable, slow, saturated; the in-process store full). */
export class BudgetStoreDown extends Error {
  override readonly name = 'BudgetStoreDown'
}
