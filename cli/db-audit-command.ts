import { basename, join } from 'node:path'
import { ReadtrailError } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import { DbAuditReader } from '../producers/db-audit/db-audit-reader.js'
import { PG_LOG_FORMATS, type PgLogFormat } from '../producers/db-audit/reader-config.js'
import { DB_AUDIT_SOURCE_KINDS, type DbAuditSourceKind } from '../schemas/db-audit-event.js'
import type { AppConfig } from './config.js'

/** The flags of `readtrail db-audit`, as the parser hands them over (strings unchecked). */
export interface DbAuditArgs {
  source: string | undefined
  kind: string | undefined
  log: string | undefined
  /** Comma-separated schema.table (PostgreSQL) or database.table (MariaDB). */
  tables: string | undefined
  signingKey: string | undefined
  once: boolean
  logFormat?: string | undefined
  /** Where the position file lives. @default $READTRAIL_HOME/db-audit */
  stateDir?: string | undefined
  /** The name the signing key is trusted for. @default the key file's name without .pem (readtrail keys generate --producer SERVICE writes SERVICE.pem) */
  service?: string | undefined
}

/**
 * `readtrail db-audit`: reads a database's own audit log (pgAudit csvlog or
 * jsonlog, MariaDB server_audit) and publishes the reads of the given
 * tables to `<topic>.db-audit` as signed batches, every entry once, until
 * SIGINT/SIGTERM (or, with --once, until it has caught up). Exit 0 when it
 * stopped cleanly, 2 on an error (the reader's coded error is printed).
 */
export async function dbAuditCommand(config: Readonly<AppConfig>, args: DbAuditArgs, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const missing = (['source', 'kind', 'log', 'tables', 'signingKey'] as const).filter((k) => args[k] === undefined || args[k] === '')
  if (missing.length > 0) throw new ReadtrailError('USAGE', `readtrail db-audit needs ${missing.map(flagOf).join(', ')}`)
  if (!DB_AUDIT_SOURCE_KINDS.includes(args.kind as DbAuditSourceKind)) throw new ReadtrailError('USAGE', `--kind ${JSON.stringify(args.kind)}: expected ${DB_AUDIT_SOURCE_KINDS.join(' or ')}`)
  if (args.logFormat !== undefined && !PG_LOG_FORMATS.includes(args.logFormat as PgLogFormat)) throw new ReadtrailError('USAGE', `--log-format ${JSON.stringify(args.logFormat)}: expected ${PG_LOG_FORMATS.join(' or ')}`)
  const signingKey = args.signingKey!
  const reader = new DbAuditReader({
    source: args.source!,
    kind: args.kind as DbAuditSourceKind,
    log: args.log!,
    ...(args.logFormat === undefined ? {} : { logFormat: args.logFormat as PgLogFormat }),
    tables: args.tables!.split(',').map((t) => t.trim()).filter(Boolean),
    stateDir: args.stateDir ?? join(env['READTRAIL_HOME'] || '.readtrail', 'db-audit'),
    topic: config.topic,
    service: args.service ?? basename(signingKey).replace(/\.pem$/, ''),
    kafka: config.kafka,
    signingKey,
    logger,
  })
  if (args.once) {
    const stats = await reader.runOnce()
    logger.info({ stats }, 'db-audit reader caught up')
    return 0
  }
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await reader.start()
  const progress = setInterval(() => logger.info({ stats: reader.stats() }, 'db-audit reader progress'), 60_000)
  progress.unref()
  try {
    const fatal = await Promise.race([stopped.then(() => undefined), reader.failed])
    await reader.stop()
    if (fatal !== undefined) throw fatal
    logger.info({ stats: reader.stats() }, 'db-audit reader stopped')
    return 0
  } finally {
    clearInterval(progress)
  }
}

function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
}
