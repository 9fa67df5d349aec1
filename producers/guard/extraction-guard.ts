import type { Logger } from '../../common/logger.js'
import type { PrincipalType } from '../../schemas/access-event.js'
import type { AlertAction } from '../../schemas/alert-event.js'
import { HookError } from '../hooks/errors.js'
import { budgetKey, type BudgetSubject } from './budget-key.js'
import { BudgetStoreDown, type BudgetStore, type TakeRequest, type TakeResult, type WindowLimit } from './budget-store.js'
import type { Budget, GuardConfig } from './guard-config.js'

/** One table's share of a hooked query, as the guard counts it. */
export interface GuardRead {
  table: string
  /** Records the read returns (its record ids, or its rows when the key was missing). */
  records: number
}

/** Whom a read is counted against. */
export interface GuardPrincipal {
  id: string
  type: PrincipalType
  /** Set for anonymous requests (recorded as the service, type system): each address is counted on its own. */
  anonymousIp?: string | undefined
}

/** Something an alert must say, once the recorder knows the read's id and database. */
export interface GuardFinding {
  budget: string
  /** The first of the budget's tables in this query. */
  table: string
  windowSeconds: number
  limit: number
  observed: number
  action: AlertAction
  recordsInRead: number
  detail: string
}

export interface GuardVerdict {
  /** Set when the caller must get no rows: EXTRACTION_LIMIT or GUARD_UNAVAILABLE. */
  refusal: HookError | undefined
  /** Alerts to publish (already thinned to one per alertIntervalMs per principal, budget, window and action). */
  findings: GuardFinding[]
}

export interface GuardStats {
  /** Budget checks made (one per budget a query touches). */
  checked: number
  /** Reads that crossed an `alert` budget and went on. */
  alerted: number
  /** Reads that waited for room and then went on. */
  throttled: number
  /** Reads refused EXTRACTION_LIMIT (refuse, or throttle past its bound). */
  refused: number
  /** Reads of a fail-open budget let through without a check: the budget store did not answer. */
  unchecked: number
  /** Reads of a fail-closed budget refused GUARD_UNAVAILABLE: the budget store did not answer. */
  unavailable: number
}

export interface ExtractionGuard {
  readonly storeKind: BudgetStore['kind']
  /**
   * The guard's decision on one query, before its rows reach the caller.
   * Undefined when no budget applies or every one had room (decided without
   * a promise for the in-process store). A promise when Redis was asked or a
   * read is throttled; it never rejects.
   */
  check(reads: readonly GuardRead[], principal: GuardPrincipal): GuardVerdict | Promise<GuardVerdict> | undefined
  stats(): Readonly<GuardStats>
  close(): Promise<void>
}

export interface ExtractionGuardOptions {
  store: BudgetStore
  logger: Logger
  /** Key prefix of the counters (Redis); the in-process store uses it too. */
  keyPrefix: string
  now?: () => number
  sleep?: (ms: number) => Promise<void>
}

interface BudgetCheck {
  name: string
  budget: Budget
  request: TakeRequest
  tables: string[]
}

type Outcome = { kind: 'taken'; result: TakeResult } | { kind: 'down'; reason: string }

// Most distinct alert streams remembered for thinning; past it the memory
// is cleared (a flood of made-up principals then costs a burst of alerts,
// never unbounded memory).
const MAX_ALERT_STREAMS = 10_000

export function createExtractionGuard(config: Readonly<GuardConfig>, options: ExtractionGuardOptions): ExtractionGuard {
  const { store, logger: log } = options
  const now = options.now ?? Date.now
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const stats: GuardStats = { checked: 0, alerted: 0, throttled: 0, refused: 0, unchecked: 0, unavailable: 0 }
  const budgetsOf = new Map<string, string[]>()
  for (const [name, budget] of Object.entries(config.budgets)) for (const table of budget.tables) budgetsOf.set(table, [...(budgetsOf.get(table) ?? []), name])
  const allowed = new Set(config.allow.map((p) => `${p.type}\0${p.id}`))
  const alertStreams = new Map<string, { last: number; suppressed: number }>()
  let lastDownLog = 0

  function limitsOf(budget: Budget, type: PrincipalType): WindowLimit[] | undefined {
    const l = budget.limits[type]
    if (l === undefined) return undefined
    const out: WindowLimit[] = []
    if (l.perMinute !== undefined) out.push({ windowSeconds: 60, limit: l.perMinute })
    if (l.perHour !== undefined) out.push({ windowSeconds: 3600, limit: l.perHour })
    return out
  }

  function checksOf(reads: readonly GuardRead[], principal: GuardPrincipal): BudgetCheck[] | undefined {
    if (allowed.has(`${principal.type}\0${principal.id}`)) return undefined
    let byBudget: Map<string, { cost: number; tables: string[] }> | undefined
    for (const read of reads) {
      const names = budgetsOf.get(read.table)
      if (names === undefined || read.records === 0) continue
      for (const name of names) {
        byBudget ??= new Map()
        const entry = byBudget.get(name) ?? { cost: 0, tables: [] }
        entry.cost += read.records
        if (!entry.tables.includes(read.table)) entry.tables.push(read.table)
        byBudget.set(name, entry)
      }
    }
    if (byBudget === undefined) return undefined
    const subject: BudgetSubject = { type: principal.type, id: principal.id, clientIp: principal.anonymousIp }
    const checks: BudgetCheck[] = []
    for (const [name, { cost, tables }] of byBudget) {
      const budget = config.budgets[name]!
      const limits = limitsOf(budget, principal.type)
      if (limits === undefined) continue
      checks.push({ name, budget, tables, request: { key: budgetKey(options.keyPrefix, name, subject), cost, limits, force: budget.action === 'alert' } })
    }
    return checks.length === 0 ? undefined : checks
  }

  /** The store's answer, or why it gave none: a throw, a rejection, a timeout are all "down". */
  function ask(request: TakeRequest): Outcome | Promise<Outcome> {
    stats.checked += 1
    try {
      const r = store.take(request)
      if (r instanceof Promise) return r.then((result): Outcome => ({ kind: 'taken', result }), (err: unknown) => down(err))
      return { kind: 'taken', result: r }
    } catch (err) {
      return down(err)
    }
  }

  function down(err: unknown): Outcome {
    const reason = err instanceof BudgetStoreDown ? err.message : `budget store failed: ${(err as Error)?.message ?? String(err)}`
    const t = now()
    if (t - lastDownLog > 10_000) {
      lastDownLog = t
      log.warn({ reason, store: store.kind }, 'guard: budget store did not answer; reads follow their budget onStoreDown policy')
    }
    return { kind: 'down', reason }
  }

  /** Thins alerts to one per stream per alertIntervalMs; returns how many the sent one stands for, or 0 to stay quiet. */
  function gate(stream: string): number {
    const t = now()
    const seen = alertStreams.get(stream)
    if (seen && t - seen.last < config.alertIntervalMs) {
      seen.suppressed += 1
      return 0
    }
    if (alertStreams.size >= MAX_ALERT_STREAMS) alertStreams.clear()
    alertStreams.set(stream, { last: t, suppressed: 0 })
    return 1 + (seen?.suppressed ?? 0)
  }

  function finding(check: BudgetCheck, action: AlertAction, over: NonNullable<TakeResult['over']> | undefined, principal: GuardPrincipal, note: string, findings: GuardFinding[]): void {
    const stream = action === 'unchecked' ? `unchecked\0${check.name}` : `${check.request.key}\0${over?.windowSeconds}\0${action}`
    const standsFor = gate(stream)
    if (standsFor === 0) return
    const who = principal.anonymousIp === undefined ? '' : ` (anonymous requests from ${principal.anonymousIp})`
    const more = standsFor > 1 ? `; ${standsFor - 1} more like it since the last alert` : ''
    findings.push({
      budget: check.name,
      table: check.tables[0]!,
      windowSeconds: over?.windowSeconds ?? check.request.limits[0]!.windowSeconds,
      limit: over?.limit ?? check.request.limits[0]!.limit,
      observed: over?.observed ?? check.request.cost,
      action,
      recordsInRead: check.request.cost,
      detail: `${note}${who}${check.tables.length > 1 ? `; tables ${check.tables.join(', ')}` : ''}${more}`,
    })
  }

  function limitError(check: BudgetCheck, over: NonNullable<TakeResult['over']>, note: string): HookError {
    return new HookError(
      'EXTRACTION_LIMIT',
      `read refused by the extraction guard: ${check.request.cost} records of ${check.tables.join(', ')} would make ${over.observed} in ${over.windowSeconds} s against budget ${check.name}'s limit of ${over.limit}${note}`,
      { details: { budget: check.name, tables: check.tables, window_seconds: over.windowSeconds, limit: over.limit, observed: over.observed, records_in_read: check.request.cost } },
    )
  }

  /** One budget's outcome applied: the refusal it causes, if any; findings appended. */
  function apply(check: BudgetCheck, outcome: Outcome, principal: GuardPrincipal, findings: GuardFinding[], waitedMs: number): HookError | undefined {
    if (outcome.kind === 'down') {
      if (check.budget.onStoreDown === 'fail-closed') {
        stats.unavailable += 1
        return new HookError('GUARD_UNAVAILABLE', `read refused: the extraction guard could not check budget ${check.name} (${outcome.reason}) and it fails closed`, {
          details: { budget: check.name, tables: check.tables },
        })
      }
      stats.unchecked += 1
      finding(check, 'unchecked', undefined, principal, `budget store unreachable (${outcome.reason}); read let through unchecked (fail-open); ${stats.unchecked} unchecked so far`, findings)
      return undefined
    }
    const { result } = outcome
    if (result.over === undefined) {
      if (waitedMs > 0) {
        stats.throttled += 1
        // The window had room again after the wait: no limit crossed, but the principal was held back.
        finding(check, 'throttle', { windowSeconds: check.request.limits[0]!.windowSeconds, limit: check.request.limits[0]!.limit, observed: check.request.cost }, principal, `read delayed ${waitedMs} ms until the window had room`, findings)
      }
      return undefined
    }
    if (result.taken) {
      stats.alerted += 1
      finding(check, 'alert', result.over, principal, 'read let through (action alert)', findings)
      return undefined
    }
    stats.refused += 1
    const note = check.budget.action === 'throttle' ? ` (throttled: no room within ${config.throttleMaxMs} ms)` : ''
    finding(check, 'refuse', result.over, principal, `read refused${note}`, findings)
    return limitError(check, result.over, note)
  }

  /** Throttle: waits for the room the store said would come, within the bound; then takes again. */
  async function throttled(check: BudgetCheck, first: Outcome): Promise<{ outcome: Outcome; waitedMs: number }> {
    const start = now()
    let outcome = first
    while (outcome.kind === 'taken' && !outcome.result.taken) {
      const left = start + config.throttleMaxMs - now()
      // Waiting longer than the bound would only hold a connection to refuse anyway.
      if (outcome.result.retryAfterMs > left) break
      await sleep(outcome.result.retryAfterMs + 1)
      outcome = await ask(check.request)
    }
    return { outcome, waitedMs: now() - start }
  }

  function decide(checks: BudgetCheck[], outcomes: Outcome[], principal: GuardPrincipal): GuardVerdict | Promise<GuardVerdict> {
    const waits = outcomes.map((o, i) => (checks[i]!.budget.action === 'throttle' && o.kind === 'taken' && !o.result.taken && o.result.retryAfterMs <= config.throttleMaxMs ? i : -1)).filter((i) => i >= 0)
    const finish = (final: Outcome[], waited: number[]): GuardVerdict => {
      const findings: GuardFinding[] = []
      let refusal: HookError | undefined
      final.forEach((o, i) => {
        const err = apply(checks[i]!, o, principal, findings, waited[i] ?? 0)
        refusal ??= err
      })
      return { refusal, findings }
    }
    if (waits.length === 0) return finish(outcomes, [])
    return Promise.all(outcomes.map((o, i) => (waits.includes(i) ? throttled(checks[i]!, o) : { outcome: o, waitedMs: 0 }))).then((r) =>
      finish(
        r.map((x) => x.outcome),
        r.map((x) => x.waitedMs),
      ),
    )
  }

  return Object.freeze({
    storeKind: store.kind,
    check(reads: readonly GuardRead[], principal: GuardPrincipal): GuardVerdict | Promise<GuardVerdict> | undefined {
      const checks = checksOf(reads, principal)
      if (checks === undefined) return undefined
      const outcomes = checks.map((c) => ask(c.request))
      if (outcomes.some((o) => o instanceof Promise)) return Promise.all(outcomes).then((all) => decide(checks, all, principal))
      const verdict = decide(checks, outcomes as Outcome[], principal)
      if (verdict instanceof Promise) return verdict
      return verdict.refusal === undefined && verdict.findings.length === 0 ? undefined : verdict
    },
    stats: () => ({ ...stats }),
    close: () => store.close(),
  })
}
