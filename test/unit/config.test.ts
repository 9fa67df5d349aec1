import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ENVIRONMENT, loadAppConfig } from '../../cli/config.js'
import { parseConfig } from '../../common/config.js'
import { ConfigError } from '../../common/errors.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { AuditProducerConfig } from '../../producers/config.js'
import { StoreConfig } from '../../store/config.js'
import { thrownBy } from '../helpers/thrown.js'

interface Issue {
  key: string
  problem: string
}

const configError = (fn: () => unknown): ConfigError => thrownBy(ConfigError, fn)

const issuesOf = (err: ConfigError) => (err.details?.['issues'] ?? []) as Issue[]

function expectDeeplyFrozen(value: unknown, path = 'config'): void {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return
  expect(Object.isFrozen(value), `${path} is frozen`).toBe(true)
  for (const [k, v] of Object.entries(value)) expectDeeplyFrozen(v, `${path}.${k}`)
}

describe('parseConfig', () => {
  const bad = { service: 'billing', kafka: { brokers: ['nohost'] }, lingerMs: -1, sessionHashKey: 'too-short', lingerMS: 5 }

  it('reports every invalid key of the producer config in one ConfigError', () => {
    const err = configError(() => parseConfig(AuditProducerConfig, bad, 'audit producer'))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.retriable).toBe(false)
    const keys = issuesOf(err).map((i) => i.key)
    expect(keys).toEqual(expect.arrayContaining(['kafka.brokers.0', 'lingerMs', 'sessionHashKey']))
    expect(keys).toHaveLength(4)
    for (const key of ['kafka.brokers.0', 'lingerMs', 'sessionHashKey', 'lingerMS']) expect(err.message).toContain(key)
    expect(err.message).toContain('audit producer')
  })

  it('says which limit a key broke', () => {
    const issues = issuesOf(configError(() => parseConfig(AuditProducerConfig, bad, 'audit producer')))
    const problem = (key: string) => issues.find((i) => i.key === key)?.problem
    expect(problem('kafka.brokers.0')).toMatch(/host:port/)
    expect(problem('sessionHashKey')).toMatch(/32 bytes/)
    expect(problem('lingerMs')).toMatch(/>=\s*0/)
  })
  it('lists an unknown key under its own name in details.issues', () => {
    const keys = issuesOf(configError(() => parseConfig(AuditProducerConfig, bad, 'audit producer'))).map((i) => i.key)
    expect(keys).toContain('lingerMS')
  })

  it('returns defaults, deeply frozen', () => {
    const config = parseConfig(AuditProducerConfig, { service: 'billing', sessionHashKey: 'k'.repeat(32) }, 'audit producer')
    expect(config).toMatchObject({ topic: 'readtrail.access', environment: 'production', lingerMs: 0, compression: 'none' })
    expect(config.kafka.brokers).toEqual(['127.0.0.1:19092'])
    expectDeeplyFrozen(config)
    expect(() => (config.kafka.brokers as string[]).push('x:1')).toThrow(TypeError)
  })

  it('freezes a nested object the caller passed in', () => {
    const kafka = { brokers: ['a:1', 'b:2'], clientId: 'me' }
    const config = parseConfig(AuditProducerConfig, { service: 'billing', kafka }, 'audit producer')
    expect(config.kafka.brokers).toEqual(['a:1', 'b:2'])
    expectDeeplyFrozen(config)
  })

  // Regression: deepFreeze called Object.freeze on the Buffer, which throws
  // "Cannot freeze array buffer views with elements" (fixed in a323c59).
  it('accepts a Buffer sessionHashKey without trying to freeze it', () => {
    const key = Buffer.alloc(32, 7)
    const config = parseConfig(AuditProducerConfig, { service: 'billing', sessionHashKey: key }, 'audit producer')
    expect(Buffer.isBuffer(config.sessionHashKey)).toBe(true)
    expect(Buffer.from(config.sessionHashKey!).equals(key)).toBe(true)
    expect(Object.isFrozen(config)).toBe(true)
  })

  it('reports every invalid key of the chain writer and store configs too', () => {
    const writer = configError(() => parseConfig(ChainWriterConfig, { partitionsConsumedConcurrently: 0, maxBytesPerPartition: 1, fromBeginning: 'yes' }, 'chain writer'))
    expect(issuesOf(writer).map((i) => i.key).sort()).toEqual(['fromBeginning', 'maxBytesPerPartition', 'partitionsConsumedConcurrently'])
    const store = configError(() => parseConfig(StoreConfig, { url: 'not a url', database: 'drop table;', dataDir: '' }, 'store'))
    expect(issuesOf(store).map((i) => i.key).sort()).toEqual(['dataDir', 'database', 'url'])
  })
})

describe('AuditProducerConfig sessionHashKey', () => {
  it('keeps a private copy of a Buffer key: zeroing the caller\'s buffer later changes nothing', () => {
    const key = Buffer.alloc(32, 7)
    const config = parseConfig(AuditProducerConfig, { service: 'svc', sessionHashKey: key }, 'audit producer')
    key.fill(0)
    expect(config.sessionHashKey).toEqual(Buffer.alloc(32, 7))
  })
})

describe('loadAppConfig: the verifier key', () => {
  it('defaults under READTRAIL_HOME/keys, public half beside it; each half can be moved on its own', () => {
    const config = loadAppConfig({ READTRAIL_HOME: '/srv/rt' })
    expect(config.verifier).toEqual({ keyPath: join('/srv/rt', 'keys', 'verifier.key'), publicKeyPath: join('/srv/rt', 'keys', 'verifier.key.pub') })
    expect(config.verifyStatePath).toBe(join('/srv/rt', 'verify-state.json'))
    // The public key readers trust can live where the store's owner cannot write.
    const moved = loadAppConfig({ READTRAIL_HOME: '/srv/rt', READTRAIL_VERIFY_KEY: '/vault/v.key', READTRAIL_VERIFY_PUBLIC_KEY: '/etc/readtrail/v.pub' })
    expect(moved.verifier).toEqual({ keyPath: '/vault/v.key', publicKeyPath: '/etc/readtrail/v.pub' })
    expect(Object.isFrozen(moved.verifier)).toBe(true)
  })

  it('names both variables in the environment list', () => {
    expect(Object.keys(ENVIRONMENT)).toEqual(expect.arrayContaining(['READTRAIL_VERIFY_KEY', 'READTRAIL_VERIFY_PUBLIC_KEY']))
  })
})
