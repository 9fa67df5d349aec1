import { hash } from 'node:crypto'
import { parseConfig } from '../../common/config.js'
import { ConfigError, describeError, isReadtrailError } from '../../common/errors.js'
import { componentLogger, silentLogger, type Logger } from '../../common/logger.js'
import type { AuditProducer } from '../audit-producer.js'
import type { AuditProducerConfig } from '../config.js'
import { currentAuditScope, type AuditScope } from '../context/audit-context.js'
import { fingerprintQuery, type SqlDialect } from '../query-fingerprint.js'
import { LIMITS } from '../../schemas/access-event.js'
import type { ParsedReadInput } from '../../schemas/read-input.js'
import { AuditHookConfig, type AuditHookConfigInput, type SensitiveTable } from './hook-config.js'
import { AuditUnavailableError, HookError } from './errors.js'
import type { TableRead } from './table-read.js'
import type { ExtractionGuard, GuardFinding, GuardPrincipal, GuardRead, GuardStats, GuardVerdict } from '../guard/extraction-guard.js'
import { openExtractionGuard } from '../guard/open-guard.js'

export interface ReadRecorderStats {
  /** Reads handed to the producer. */
  recorded: number
  /** Reads made outside any audit context, recorded as `system`. */
  withoutContext: number
  /** Reads of anonymous requests, recorded as `system` with the request's client IP and trace id. */
  anonymous: number
  /** Fail-open reads whose event could not be made durable: each was logged with its code. */
  unrecorded: number
  /** Reads refused before the caller saw a row (fail-closed, strict mode, oversize, extraction guard). */
  refused: number
  /** Reads recorded with outcome `denied` (refused by the extraction guard). */
  denied: number
  /** The extraction guard's counts (zero without a guard). */
  guard: Readonly<GuardStats>
}

/**
 * The driver-neutral half of every database hook: turns what a hook saw of
 * one query result into read events, under each table's policy.
 */
export interface ReadRecorder {
  readonly config: Readonly<AuditHookConfig>
  /** The sensitive-table entry for a qualified name, or undefined. */
  table(qualifiedName: string): SensitiveTable | undefined
  /**
   * Records one query's reads of sensitive tables. Returns undefined when the
   * rows may go to the caller at once (every table fail-open), or a promise
   * that resolves once they may (every fail-closed event durable) and
   * rejects with AuditUnavailableError otherwise. Throws, before recording
   * anything, READ_TOO_LARGE, CONTEXT_MISSING or RECORD_IDS_INCOMPLETE
   * (strict mode): the caller must then not see the rows.
   *
   * With `guard`, the read is checked against its principal's budgets
   * before anything else is recorded. A refusal (EXTRACTION_LIMIT, or
   * GUARD_UNAVAILABLE when the budget store is down and the budget fails
   * closed) is first recorded as a read with outcome `denied` naming the
   * records the caller would have received, then thrown (in-process store)
   * or rejected (Redis, or a throttled read that found no room in time).
   *
   * `context` is the audit context of the caller that issued the query: a
   * driver delivers results from its socket's callbacks, where the
   * AsyncLocalStorage context is the connection's, not the caller's, so
   * hooks capture it when the query is issued.
   *
   * `dialect` is how the driver's SQL is lexed when its literals are removed
   * (the hooks pass their own); by default the producer's `sqlDialect`.
   *
   * `dbSession` is the server's id of the connection the query ran on (pg
   * backend pid, MySQL thread id): with the SHA-256 of `sql`, it is what
   * the database-side cross-check matches the server's audit log on.
   */
  record(reads: readonly TableRead[], sql: string | undefined, database: string, context?: AuditScope, dialect?: SqlDialect, dbSession?: string): Promise<void> | undefined
  stats(): Readonly<ReadRecorderStats>
  /** Closes what the recorder opened (the guard's Redis connection); the producer stays open. */
  close(): Promise<void>
}

export interface ReadRecorderOptions {
  /**
   * Where reads outside any context and unrecorded fail-open reads are
   * logged (stats() counts them either way). @default none: an SDK writes
   * nothing to the host's output unless given a logger
   */
  logger?: Logger
}

// Parameterised SQL repeats: lexing it once per distinct text keeps the
// fingerprint off the per-query cost. Bounded so ad-hoc SQL cannot grow it.
const FINGERPRINT_CACHE_SIZE = 2000

export function createReadRecorder(producer: AuditProducer, configInput: AuditHookConfigInput, options: ReadRecorderOptions = {}): ReadRecorder {
  const config = parseConfig(AuditHookConfig, configInput, 'audit hook')
  assertDurableInTime(config, producer.config)
  const log = componentLogger(options.logger ?? silentLogger(), 'audit-hook')
  const stats: Omit<ReadRecorderStats, 'guard'> = { recorded: 0, withoutContext: 0, anonymous: 0, unrecorded: 0, refused: 0, denied: 0 }
  const guard: ExtractionGuard | undefined = config.guard && openGuard(config, producer, options.logger)
  const noGuard: GuardStats = Object.freeze({ checked: 0, alerted: 0, throttled: 0, refused: 0, unchecked: 0, unavailable: 0 })
  // One cache per dialect: the same text lexes differently in each.
  const fingerprints: Record<SqlDialect, Map<string, string>> = { postgres: new Map(), mysql: new Map() }
  const systemPrincipal = Object.freeze({ id: producer.config.service, type: 'system' as const })
  let lastContextWarning = 0

  function fingerprintOf(sql: string | undefined, dialect: SqlDialect): string | undefined {
    if (sql === undefined) return undefined
    const cache = fingerprints[dialect]
    let fp = cache.get(sql)
    if (fp === undefined) {
      fp = fingerprintQuery(sql, dialect)
      if (cache.size >= FINGERPRINT_CACHE_SIZE) cache.clear()
      cache.set(sql, fp)
    }
    return fp
  }

  // The same bound for the statement digests: one SHA-256 per distinct text.
  const digests = new Map<string, string>()
  function digestOf(sql: string | undefined): string | undefined {
    if (sql === undefined) return undefined
    let digest = digests.get(sql)
    if (digest === undefined) {
      digest = hash('sha256', sql, 'hex')
      if (digests.size >= FINGERPRINT_CACHE_SIZE) digests.clear()
      digests.set(sql, digest)
    }
    return digest
  }

  function refuse(err: Error): never {
    stats.refused += 1
    throw err
  }

  function onFailOpenError(table: string, err: unknown): void {
    stats.unrecorded += 1
    // Loud on purpose: this read happened and the audit log may never know.
    log.error({ table, code: isReadtrailError(err) ? err.code : undefined, reason: describeError(err), unrecorded: stats.unrecorded }, 'read of a fail-open table NOT recorded')
  }

  /**
   * Every part of a hooked read was validated before: the context when it
   * was entered, names when the hooks were configured. Only record ids come
   * from the database; one longer than the schema allows sends the read
   * through the validating path, which refuses it with INPUT_INVALID.
   */
  function enqueue(input: ParsedReadInput, settle: (err: Error | undefined) => void, onReadId?: (readId: string) => void): void {
    try {
      if (input.recordIds.some((id) => (id as string).length > LIMITS.recordId)) {
        producer.recordRead(input).then((r) => {
          onReadId?.(r.readId)
          settle(undefined)
        }, (err: Error) => {
          onReadId?.('')
          settle(err)
        })
        return
      }
      const readId = producer.enqueueParsedRead(input, settle)
      onReadId?.(typeof readId === 'string' ? readId : '')
    } catch (err) {
      onReadId?.('')
      settle(err as Error)
    }
  }

  /** The event input of each table read, with the query's fingerprint and digest, as `outcome`. */
  function inputsOf(reads: readonly TableRead[], sql: string | undefined, database: string, context: AuditScope | undefined, dialect: SqlDialect, dbSession: string | undefined, outcome: 'success' | 'denied'): ParsedReadInput[] {
    const queryFingerprint = fingerprintOf(sql, dialect)
    // Only with a session id: without one there is nothing to match on.
    const statementDigest = dbSession === undefined ? undefined : digestOf(sql)
    const principal = context?.principal ?? systemPrincipal
    return reads.map((read) => ({
      principal,
      sessionId: context?.sessionId,
      clientIp: context?.clientIp,
      purpose: context?.purpose,
      traceId: context?.traceId,
      action: 'read',
      outcome,
      resource: { database: config.database ?? read.database ?? database, table: read.table },
      columns: read.columns,
      recordIds: read.recordIds,
      rowCount: read.rowCount,
      recordIdsComplete: read.recordIdsComplete,
      queryFingerprint,
      dbSession,
      statementDigest,
    }))
  }

  /** Publishes the guard's alerts, each naming the read of its table (once its id is known). */
  function alertsFor(findings: readonly GuardFinding[], inputs: readonly ParsedReadInput[], principal: GuardPrincipal): ((table: string, readId: string) => void) | undefined {
    if (findings.length === 0) return undefined
    return (table, readId) => {
      const input = inputs.find((i) => i.resource.table === table)
      for (const f of findings) {
        if (f.table !== table) continue
        producer.publishAlert({
          principal_id: principal.id,
          principal_type: principal.type,
          db_name: input?.resource.database ?? '',
          table_name: f.table,
          budget: f.budget,
          window_seconds: f.windowSeconds,
          limit: f.limit,
          observed: f.observed,
          action: f.action,
          read_id: readId,
          records_in_read: f.recordsInRead,
          detail: f.detail,
        })
      }
    }
  }

  /**
   * A read the guard refused: recorded with outcome `denied`, naming the
   * records the caller would have received (what an investigation of an
   * attempted extraction needs), then the refusal thrown. Not held for
   * durability: the caller gets no rows whatever happens to the event.
   */
  function deny(reads: readonly TableRead[], sql: string | undefined, database: string, context: AuditScope | undefined, dialect: SqlDialect, dbSession: string | undefined, verdict: GuardVerdict, principal: GuardPrincipal): never {
    const inputs = inputsOf(reads, sql, database, context, dialect, dbSession, 'denied')
    const alert = alertsFor(verdict.findings, inputs, principal)
    for (const input of inputs) {
      stats.denied += 1
      enqueue(input, (err) => err && onFailOpenError(input.resource.table, err), alert && ((readId) => alert(input.resource.table, readId)))
    }
    return refuse(verdict.refusal!)
  }

  return Object.freeze({
    config,
    table: (name: string) => config.tables[name],
    record(reads: readonly TableRead[], sql: string | undefined, database: string, context = currentAuditScope(), dialect: SqlDialect = producer.config.sqlDialect, dbSession?: string): Promise<void> | undefined {
      if (reads.length === 0) return undefined
      for (const read of reads) {
        if (read.rowCount > config.maxRowsPerRead) {
          refuse(new HookError('READ_TOO_LARGE', `a query returned ${read.rowCount} rows of ${read.table}, over maxRowsPerRead (${config.maxRowsPerRead}): refused`, { details: { table: read.table, rows: read.rowCount, limit: config.maxRowsPerRead } }))
        }
        if (config.strict && !read.recordIdsComplete) {
          refuse(new HookError('RECORD_IDS_INCOMPLETE', `a query returned rows of ${read.table} without its primary key: strict mode refuses reads whose records cannot be named`, { details: { table: read.table } }))
        }
      }
      if (context === undefined) {
        if (config.strict) refuse(new HookError('CONTEXT_MISSING', `a read of ${reads.map((r) => r.table).join(', ')} ran outside any audit context: strict mode refuses it`))
        stats.withoutContext += 1
        const now = Date.now()
        if (now - lastContextWarning > 10_000) {
          lastContextWarning = now
          log.warn({ tables: reads.map((r) => r.table), without_context: stats.withoutContext }, 'read outside any audit context: recorded as principal type system')
        }
      } else if (context.principal === undefined) {
        // The application said who: nobody signed in. Strict mode lets it
        // through; the request's address and trace make it attributable.
        stats.anonymous += 1
      }
      const principal: GuardPrincipal = guardPrincipal(context)
      const verdict = guard?.check(guardReads(reads), principal)
      if (verdict === undefined) return release(reads, sql, database, context, dialect, dbSession, undefined, principal)
      if (!(verdict instanceof Promise)) {
        if (verdict.refusal) deny(reads, sql, database, context, dialect, dbSession, verdict, principal)
        return release(reads, sql, database, context, dialect, dbSession, verdict.findings, principal)
      }
      // Redis asked, or a throttled read waits: the rows wait for the answer.
      return verdict.then((v) => {
        if (v.refusal) deny(reads, sql, database, context, dialect, dbSession, v, principal)
        return release(reads, sql, database, context, dialect, dbSession, v.findings, principal)
      })
    },
    stats: () => ({ ...stats, guard: guard?.stats() ?? noGuard }),
    close: async () => {
      await guard?.close()
    },
  })

  /** Records a read the caller may have, under its tables' policies (what record did before the guard). */
  function release(reads: readonly TableRead[], sql: string | undefined, database: string, context: AuditScope | undefined, dialect: SqlDialect, dbSession: string | undefined, findings: readonly GuardFinding[] | undefined, principal: GuardPrincipal): Promise<void> | undefined {
    const inputs = inputsOf(reads, sql, database, context, dialect, dbSession, 'success')
    const alert = findings && alertsFor(findings, inputs, principal)
    let durable: Promise<unknown>[] | undefined
    for (let i = 0; i < reads.length; i++) {
      const read = reads[i]!
      const input = inputs[i]!
      const onReadId = alert && ((readId: string) => alert(read.table, readId))
      stats.recorded += 1
      if (read.policy === 'fail-closed') {
        ;(durable ??= []).push(new Promise<void>((resolve, reject) => enqueue(input, (err) => (err ? reject(err) : resolve()), onReadId)))
      } else {
        enqueue(input, (err) => err && onFailOpenError(read.table, err), onReadId)
      }
    }
    if (durable === undefined) return undefined
    return untilDurable(durable, config.durableWithinMs).catch((err: unknown) => refuse(err as Error))
  }

  function guardPrincipal(context: AuditScope | undefined): GuardPrincipal {
    const p = context?.principal ?? systemPrincipal
    // Anonymous requests share the service's principal: counted per client address, or one anonymous scraper would spend every visitor's budget.
    return { id: p.id, type: p.type, anonymousIp: context !== undefined && context.principal === undefined ? (context.clientIp ?? '') : undefined }
  }
}

/** What the guard counts of each table read: its records, or its rows when they could not be named. */
function guardReads(reads: readonly TableRead[]): GuardRead[] {
  return reads.map((r) => ({ table: r.table, records: r.recordIdsComplete ? r.recordIds.length : r.rowCount }))
}

function openGuard(config: Readonly<AuditHookConfig>, producer: AuditProducer, logger: Logger | undefined): ExtractionGuard {
  // Alerts are signed side batches: without the producer's key a refused scraper would leave no alert a writer stores.
  if (producer.config.signingKey === undefined) {
    const problem = 'the extraction guard publishes signed alerts: give the producer a signingKey'
    throw new ConfigError(`invalid audit hook configuration:\n  - guard: ${problem}`, { details: { issues: [{ key: 'guard', problem }] } })
  }
  return openExtractionGuard(config.guard!, componentLogger(logger ?? silentLogger(), 'readtrail-guard'))
}

/**
 * A fail-closed read waits for its event to be sent (after `lingerMs`) and,
 * with an outbox, for the broker's `sendDeadlineMs` before the outbox takes
 * it. A `durableWithinMs` inside that wait refuses every fail-closed read
 * (or every one while the broker is away, which the outbox is there to
 * absorb): refused here, at start, instead of on every read.
 * @throws ConfigError (CONFIG_INVALID) naming durableWithinMs and the bound.
 */
function assertDurableInTime(config: Readonly<AuditHookConfig>, producer: Readonly<Pick<AuditProducerConfig, 'lingerMs' | 'outbox'>>): void {
  const failClosed = Object.entries(config.tables).filter(([, t]) => t.policy === 'fail-closed').map(([name]) => name)
  if (failClosed.length === 0) return
  const wait = producer.lingerMs + (producer.outbox?.sendDeadlineMs ?? 0)
  if (config.durableWithinMs > wait) return
  const why = producer.outbox ? `the producer's lingerMs (${producer.lingerMs}) plus outbox.sendDeadlineMs (${producer.outbox.sendDeadlineMs})` : `the producer's lingerMs (${producer.lingerMs})`
  const problem = `must be more than ${why} = ${wait} ms, or every read of the fail-closed table${failClosed.length === 1 ? '' : 's'} ${failClosed.join(', ')} would be refused`
  throw new ConfigError(`invalid audit hook configuration:\n  - durableWithinMs: ${problem}`, { details: { issues: [{ key: 'durableWithinMs', problem }] } })
}

/** Resolves once every event is durable; rejects AUDIT_UNAVAILABLE on the first failure or at the deadline. */
function untilDurable(pending: Promise<unknown>[], deadlineMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new AuditUnavailableError(`the audit event was not durable within ${deadlineMs} ms (broker and outbox both unavailable or slow)`)), deadlineMs)
    Promise.all(pending).then(
      () => {
        clearTimeout(timer)
        resolve()
      },
      (cause: unknown) => {
        clearTimeout(timer)
        reject(new AuditUnavailableError(`the audit event could not be made durable: ${describeError(cause)}`, { cause }))
      },
    )
  })
}
