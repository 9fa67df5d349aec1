import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../common/errors.js'
import { DB_AUDIT_ERROR_CODES, DbAuditError } from '../../producers/db-audit/errors.js'
import { parseDbAuditReaderConfig } from '../../producers/db-audit/reader-config.js'
import { thrownBy } from '../helpers/thrown.js'

const VALID = { source: 'pg-main', kind: 'pgaudit', log: '/var/log/postgresql', tables: ['public.patients'], stateDir: '/var/lib/readtrail', topic: 'readtrail.access', service: 'db-audit' }

describe('db-audit reader configuration', () => {
  it('is parsed once, with defaults, and frozen', () => {
    const config = parseDbAuditReaderConfig(VALID)
    expect(config).toMatchObject({ pollIntervalMs: 500, maxBatchEvents: 1000, maxRecordBytes: 4 * 1024 * 1024, startAt: 'beginning' })
    expect(Object.isFrozen(config) && Object.isFrozen(config.tables)).toBe(true)
  })

  it('names every invalid key at once, with the limit it broke', () => {
    const err = thrownBy(ConfigError, () =>
      parseDbAuditReaderConfig({ ...VALID, source: '../etc', tables: ['patients'], maxBatchEvents: 20_000, maxRecordBytes: 10, pollIntervalMs: 0, kind: 'server_audit', logFormat: 'csvlog' }),
    )
    for (const key of ['source', 'tables.0', 'maxBatchEvents', 'maxRecordBytes', 'pollIntervalMs', 'logFormat']) expect(err.message).toContain(key)
  })

  it('every error code says whether it is retriable and is documented', () => {
    for (const [code, entry] of Object.entries(DB_AUDIT_ERROR_CODES)) {
      expect(entry.doc.length, code).toBeGreaterThan(40)
      expect(new DbAuditError(code as keyof typeof DB_AUDIT_ERROR_CODES, 'x').retriable).toBe(entry.retriable)
    }
  })
})
