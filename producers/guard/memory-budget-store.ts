import { BudgetStoreDown, type BudgetStore, type TakeRequest, type TakeResult, type WindowSeconds } from './budget-store.js'
import { emptySeries, pruneSeries, takeFromSeries, type Series } from './sliding-window.js'

export interface MemoryBudgetStoreOptions {
  /** Most principal counters held at once. */
  maxKeys: number
  /** The clock (ms); tests move it by hand. @default Date.now */
  now?: () => number
}

// A key is forgotten once nothing in its longest window still counts; a
// sweep looks for such keys at most this often.
const SWEEP_EVERY_MS = 60_000

/**
 * The default store: one process's counters, exact under the sliding-window
 * rule, decided synchronously (no promise per read). Each instance of an
 * application counts alone, so N instances allow N budgets: use Redis there.
 *
 * Bounded: past `maxKeys` principals a new one is not counted but refused as
 * "store down" (its budget's onStoreDown decides). Evicting an old counter
 * instead would let an attacker reset their own budget by making up
 * principals until theirs is evicted.
 */
export function createMemoryBudgetStore(options: MemoryBudgetStoreOptions): Omit<BudgetStore, 'take'> & { take(request: TakeRequest): TakeResult } {
  const now = options.now ?? Date.now
  const counters = new Map<string, Map<WindowSeconds, Series>>()
  let lastSweep = now()

  function sweep(at: number): void {
    lastSweep = at
    for (const [key, windows] of counters) {
      let live = false
      for (const [w, series] of windows) if (pruneSeries(series, w, at) > 0) live = true
      if (!live) counters.delete(key)
    }
  }

  return Object.freeze({
    kind: 'memory' as const,
    take(request: TakeRequest): TakeResult {
      const at = now()
      if (at - lastSweep > SWEEP_EVERY_MS) sweep(at)
      let windows = counters.get(request.key)
      if (windows === undefined) {
        if (counters.size >= options.maxKeys) sweep(at)
        if (counters.size >= options.maxKeys) throw new BudgetStoreDown(`the in-process budget store holds ${counters.size} principals, its maxPrincipals`)
        windows = new Map()
        counters.set(request.key, windows)
      }
      const held = windows
      return takeFromSeries((w) => {
        let s = held.get(w)
        if (s === undefined) held.set(w, (s = emptySeries()))
        return s
      }, request, at)
    },
    close: async () => {
      counters.clear()
    },
  })
}
