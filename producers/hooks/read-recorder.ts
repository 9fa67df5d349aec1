import { createHash } from 'node:crypto'
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

export interface ReadRecorderStats {
  /** Reads handed to the producer. */
  recorded: number
  /** Reads made outside any audit context, recorded as `system`. */
  withoutContext: number
  /** Reads of anonymous requests, recorded as `system` with the request's client IP and trace id. */
  anonymous: number
  /** Fail-open reads whose event could not be made durable: each was logged with its code. */
  unrecorded: number
  /** Reads refused before the caller saw a row (fail-closed, strict mode, oversize). */
  refused: number
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
  const stats: ReadRecorderStats = { recorded: 0, withoutContext: 0, anonymous: 0, unrecorded: 0, refused: 0 }
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
      digest = createHash('sha256').update(sql).digest('hex')
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
  function enqueue(input: ParsedReadInput, settle: (err: Error | undefined) => void): void {
    try {
      if (input.recordIds.some((id) => (id as string).length > LIMITS.recordId)) {
        producer.recordRead(input).then(() => settle(undefined), settle)
        return
      }
      producer.enqueueParsedRead(input, settle)
    } catch (err) {
      settle(err as Error)
    }
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
      const queryFingerprint = fingerprintOf(sql, dialect)
      // Only with a session id: without one there is nothing to match on.
      const statementDigest = dbSession === undefined ? undefined : digestOf(sql)
      let durable: Promise<unknown>[] | undefined
      const principal = context?.principal ?? systemPrincipal
      for (const read of reads) {
        const input: ParsedReadInput = {
          principal,
          sessionId: context?.sessionId,
          clientIp: context?.clientIp,
          purpose: context?.purpose,
          traceId: context?.traceId,
          action: 'read',
          outcome: 'success',
          resource: { database: config.database ?? read.database ?? database, table: read.table },
          columns: read.columns,
          recordIds: read.recordIds,
          rowCount: read.rowCount,
          recordIdsComplete: read.recordIdsComplete,
          queryFingerprint,
          dbSession,
          statementDigest,
        }
        stats.recorded += 1
        if (read.policy === 'fail-closed') {
          ;(durable ??= []).push(new Promise<void>((resolve, reject) => enqueue(input, (err) => (err ? reject(err) : resolve()))))
        } else {
          enqueue(input, (err) => err && onFailOpenError(read.table, err))
        }
      }
      if (durable === undefined) return undefined
      return untilDurable(durable, config.durableWithinMs).catch((err: unknown) => refuse(err as Error))
    },
    stats: () => ({ ...stats }),
  })
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
