import { describe, expect, it } from 'vitest'
import { ReadtrailError } from '../../common/errors.js'
import { silentLogger } from '../../common/logger.js'
import { dbAuditCommand } from '../../cli/db-audit-command.js'
import { loadAppConfig } from '../../cli/config.js'
import { thrown } from '../helpers/thrown.js'

describe('readtrail db-audit', () => {
  const config = loadAppConfig({})
  const base = { source: 'pg-main', kind: 'pgaudit', log: '/nonexistent', tables: 'public.patients', signingKey: '/nonexistent.pem', once: true }

  it('names every missing flag in one USAGE error', async () => {
    const err = await thrown(dbAuditCommand(config, { ...base, source: undefined, tables: '', signingKey: undefined }, silentLogger()))
    expect(err).toBeInstanceOf(ReadtrailError)
    expect((err as ReadtrailError).code).toBe('USAGE')
    expect((err as Error).message).toContain('--source, --tables, --signing-key')
  })

  it('refuses an unknown --kind or --log-format before touching anything', async () => {
    expect(((await thrown(dbAuditCommand(config, { ...base, kind: 'oracle' }, silentLogger()))) as ReadtrailError).code).toBe('USAGE')
    expect(((await thrown(dbAuditCommand(config, { ...base, logFormat: 'stderr' }, silentLogger()))) as ReadtrailError).code).toBe('USAGE')
  })

  it('refuses a missing signing key with PRODUCER_KEY_INVALID, naming the path', async () => {
    const err = (await thrown(dbAuditCommand(config, base, silentLogger()))) as ReadtrailError
    expect(err.code).toBe('PRODUCER_KEY_INVALID')
    expect(err.message).toContain('/nonexistent.pem')
  })
})
