// The database-side audit log reader: pgAudit (csvlog, jsonlog) and MariaDB
// server_audit entries for sensitive tables, published as signed db-audit
// batches. Parsers and the tailer stay internal; tests import them by path.
export { DbAuditReader, runDbAuditReader } from './db-audit-reader.js'
export type { DbAuditReaderOptions, DbAuditReaderStats } from './db-audit-reader.js'
export { DB_AUDIT_READER_DEFAULTS, PG_LOG_FORMATS } from './reader-config.js'
export type { DbAuditReaderConfig, DbAuditReaderConfigInput, PgLogFormat, SigningKeySource } from './reader-config.js'
export { DB_AUDIT_ERROR_CODES, DbAuditError } from './errors.js'
export type { DbAuditErrorCode, DbAuditErrorOptions } from './errors.js'
