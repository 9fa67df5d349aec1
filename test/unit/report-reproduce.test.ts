import { describe, expect, it } from 'vitest'
import { reproduceInvocation } from '../../cli/report-command.js'
import { loadAppConfig } from '../../cli/config.js'

/** The configuration `readtrail report` would run with in this environment (flags as overrides). */
function invocation(env: Record<string, string>, overrides: Parameters<typeof loadAppConfig>[1] = {}) {
  return reproduceInvocation(loadAppConfig(env, overrides), env)
}

describe('the reproduce line of a report (regression: it left out READTRAIL_HOME)', () => {
  it('always names READTRAIL_HOME, absolute, and the database', () => {
    expect(invocation({ READTRAIL_HOME: '/srv/readtrail' })).toEqual({ environment: [['READTRAIL_HOME', '/srv/readtrail']], flags: ['--database', 'readtrail'] })
    expect(invocation({}).environment).toEqual([['READTRAIL_HOME', `${process.cwd()}/.readtrail`]])
  })

  it('adds every setting that differs from what READTRAIL_HOME implies, as the flag or variable that sets it', () => {
    const env = {
      READTRAIL_HOME: '/srv/readtrail',
      READTRAIL_CHECKPOINT_LOG: '/mnt/worm/checkpoints.jsonl',
      READTRAIL_VERIFY_STATE: 'state/verify.json',
      READTRAIL_VERIFY_PUBLIC_KEY: '/etc/readtrail/verifier.pub',
      READTRAIL_SUBJECT_KEYS: 'registry.applicants=id,practice.treatments=key1',
    }
    expect(invocation(env, { dataDir: 'data/chdb', database: 'registry_audit', publicKey: '/etc/readtrail/checkpoint.pub' })).toEqual({
      environment: [
        ['READTRAIL_HOME', '/srv/readtrail'],
        ['READTRAIL_VERIFY_STATE', `${process.cwd()}/state/verify.json`],
        ['READTRAIL_VERIFY_PUBLIC_KEY', '/etc/readtrail/verifier.pub'],
        ['READTRAIL_SUBJECT_KEYS', 'registry.applicants=id,practice.treatments=key1'],
      ],
      flags: ['--database', 'registry_audit', '--data-dir', `${process.cwd()}/data/chdb`, '--public-key', '/etc/readtrail/checkpoint.pub', '--checkpoint-log', '/mnt/worm/checkpoints.jsonl'],
    })
  })

  it('names a ClickHouse server and its user, never the password', () => {
    const result = invocation({ READTRAIL_HOME: '/srv/rt', READTRAIL_CLICKHOUSE_URL: 'https://auditor:s3cret@ch.internal:8443/', READTRAIL_CLICKHOUSE_USER: 'auditor', READTRAIL_CLICKHOUSE_PASSWORD: 'hunter2' })
    expect(result.environment).toEqual([
      ['READTRAIL_HOME', '/srv/rt'],
      ['READTRAIL_CLICKHOUSE_URL', 'https://auditor@ch.internal:8443/'],
      ['READTRAIL_CLICKHOUSE_USER', 'auditor'],
    ])
    expect(JSON.stringify(result)).not.toMatch(/s3cret|hunter2/)
  })
})
