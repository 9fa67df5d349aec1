import { readdirSync, statSync } from 'node:fs'
import { extname, resolve } from 'node:path'
import { ConfigError } from '../../common/errors.js'
import type { LogLocation } from './log-files.js'
import type { DbAuditReaderConfig, PgLogFormat } from './reader-config.js'
import type { ParserChoice } from './record-parser.js'

/** Where to read and how: the location of the log files and the parser for their format. */
export interface LogSource {
  location: LogLocation
  parser: ParserChoice
  /** The resolved log path, as recorded in the position file. */
  log: string
}

const EXTENSION: Record<PgLogFormat, string> = { csvlog: '.csv', jsonlog: '.json' }

/**
 * Decides the log's layout and format from the configuration: a PostgreSQL
 * log directory is read as every .csv (csvlog) or .json (jsonlog) file in
 * it; a file path is followed with its rotated copies (path.1, path.2…).
 * Throws CONFIG_INVALID when the format cannot be told.
 */
export function resolveLogSource(config: Readonly<DbAuditReaderConfig>): LogSource {
  const log = resolve(config.log)
  const stat = statSync(log, { throwIfNoEntry: false })
  if (config.kind === 'server_audit') {
    if (stat?.isDirectory()) throw invalid('log', `${log} is a directory; give server_audit's file (server_audit_file_path), e.g. ${log}/server_audit.log`)
    return { log, location: { kind: 'rotated', path: log }, parser: { kind: 'server_audit', utcOffsetMinutes: config.serverAuditUtcOffsetMinutes, maxPending: config.maxPendingStatements } }
  }
  if (stat?.isDirectory()) {
    const format = config.logFormat ?? formatInDirectory(log)
    return { log, location: { kind: 'directory', dir: log, extension: EXTENSION[format] }, parser: { kind: 'pgaudit', format } }
  }
  const ext = extname(log)
  const format = config.logFormat ?? (ext === '.csv' ? 'csvlog' : ext === '.json' ? 'jsonlog' : undefined)
  if (!format) throw invalid('logFormat', `cannot tell the format of ${log} from its name: give logFormat (--log-format) csvlog or jsonlog`)
  return { log, location: { kind: 'rotated', path: log }, parser: { kind: 'pgaudit', format } }
}

function formatInDirectory(dir: string): PgLogFormat {
  const names = readdirSync(dir)
  const csv = names.some((n) => n.endsWith('.csv'))
  const json = names.some((n) => n.endsWith('.json'))
  if (csv !== json) return csv ? 'csvlog' : 'jsonlog'
  throw invalid('logFormat', `${dir} holds ${csv ? 'both .csv and .json' : 'no .csv or .json'} log files: give logFormat (--log-format) csvlog or jsonlog`)
}

function invalid(key: string, problem: string): ConfigError {
  return new ConfigError(`invalid db-audit reader configuration:\n  - ${key}: ${problem}`, { details: { issues: [{ key, problem }] } })
}
