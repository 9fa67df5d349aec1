import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, expectTypeOf, it } from 'vitest'
import * as root from '../../index.js'
import * as checkpoints from '../../checkpoints/index.js'
import * as consumers from '../../consumers/index.js'
import * as evidence from '../../evidence/index.js'
import * as integrity from '../../integrity/index.js'
import * as producers from '../../producers/index.js'
import * as queries from '../../queries/index.js'
import * as reports from '../../reports/index.js'
import * as schemas from '../../schemas/index.js'
import * as store from '../../store/index.js'
import { repoRoot } from '../../demo/local-kafka.js'
import type { AuditProducer, AuditProducerConfigInput, Durability, ErrorCode, ReadInput, ReadtrailError, RecordedRead } from '../../index.js'

// The value names each package entry exports. Adding one is a decision about
// the public API (and a semver promise), so it is made here, on purpose; an
// internal (RowBinaryWriter, HASH_SQL, linkEntries, scanSegments) cannot leak
// back through an index without this test failing, at compile time and at run time.
const PRODUCERS = [
  'AuditContextError',
  'AuditUnavailableError',
  'ConfigError',
  'HookError',
  'InputError',
  'OutboxError',
  'ProducerError',
  'ReadtrailError',
  'auditContextMiddleware',
  'bindToAuditContext',
  'createAuditProducer',
  'createReadRecorder',
  'currentAuditContext',
  'instrumentMysql2',
  'instrumentPg',
  'isReadtrailError',
  'registerAuditContext',
  'runWithAuditContext',
  'runWithoutAuditContext',
  'withAuditContext',
] as const
const ROOT = [...PRODUCERS, 'CheckpointError', 'ERROR_CODES', 'EvidenceError', 'IngestError', 'QueryError', 'SchemaError', 'StoreError', 'VerificationError'] as const
const SCHEMAS = ['ACTIONS', 'AccessEvent', 'InputError', 'LIMITS', 'OUTCOMES', 'PRINCIPAL_TYPES', 'SchemaError', 'createCodec', 'loadSchemaRegistry'] as const
const CONSUMERS = ['IngestError', 'consumerLag', 'createIngest', 'deadLetterTopicOf', 'ensureTopics', 'waitForCatchUp'] as const
const STORE = ['StoreConfig', 'StoreError', 'openStore'] as const
const QUERIES = [
  'NO_SUBJECT_KEYS',
  'QueryError',
  'SAVED_QUERIES',
  'SubjectKeysText',
  'alerts',
  'breachRecords',
  'breachScope',
  'breachTimeline',
  'bulkExtraction',
  'firstTimeAccess',
  'getSavedQuery',
  'offHoursAccess',
  'principalTimeline',
  'readsWithoutPurpose',
  'recordsTouchedByPrincipal',
  'runSavedQuery',
  'subjectAccessReport',
  'topReaders',
  'unauditedReadEntries',
  'unauditedReads',
  'whoTouchedRecord',
] as const
const REPORTS = ['renderBreachReport', 'renderPrincipalReport'] as const
const INTEGRITY = ['VerificationError', 'VerifyState', 'analyseCheckpoints', 'formatReport', 'loadCheckpoints', 'nextVerifyState', 'readVerifyState', 'verifyStore', 'writeVerifyState'] as const
const CHECKPOINTS = [
  'CheckpointError',
  'SignedCheckpoint',
  'checkpointTopicOf',
  'generateKeyFiles',
  'isValidSignature',
  'keyId',
  'loadPublicKey',
  'loadSigningKey',
  'readCheckpointLog',
  'readCheckpointTopic',
] as const
const EVIDENCE = ['EVIDENCE_FORMAT', 'EvidenceBundle', 'EvidenceError', 'exportEvidence', 'parseEvidenceBundle', 'serializeEvidenceBundle', 'verifyEvidence'] as const

type Names<T extends readonly string[]> = T[number]

describe('public API', () => {
  it('each package entry exports exactly its listed names (types)', () => {
    expectTypeOf<keyof typeof root>().toEqualTypeOf<Names<typeof ROOT>>()
    expectTypeOf<keyof typeof producers>().toEqualTypeOf<Names<typeof PRODUCERS>>()
    expectTypeOf<keyof typeof schemas>().toEqualTypeOf<Names<typeof SCHEMAS>>()
    expectTypeOf<keyof typeof consumers>().toEqualTypeOf<Names<typeof CONSUMERS>>()
    expectTypeOf<keyof typeof store>().toEqualTypeOf<Names<typeof STORE>>()
    expectTypeOf<keyof typeof queries>().toEqualTypeOf<Names<typeof QUERIES>>()
    expectTypeOf<keyof typeof reports>().toEqualTypeOf<Names<typeof REPORTS>>()
    expectTypeOf<keyof typeof integrity>().toEqualTypeOf<Names<typeof INTEGRITY>>()
    expectTypeOf<keyof typeof checkpoints>().toEqualTypeOf<Names<typeof CHECKPOINTS>>()
    expectTypeOf<keyof typeof evidence>().toEqualTypeOf<Names<typeof EVIDENCE>>()
  })

  it('each package entry exports exactly its listed names (run time)', () => {
    const entries: [Record<string, unknown>, readonly string[]][] = [
      [root, ROOT],
      [producers, PRODUCERS],
      [schemas, SCHEMAS],
      [consumers, CONSUMERS],
      [store, STORE],
      [queries, QUERIES],
      [reports, REPORTS],
      [integrity, INTEGRITY],
      [checkpoints, CHECKPOINTS],
      [evidence, EVIDENCE],
    ]
    for (const [entry, names] of entries) expect(Object.keys(entry).sort()).toEqual([...names].sort())
  })

  it('exports every error class readtrail defines from the root, each a ReadtrailError', async () => {
    // Found on disk, not listed: a new errors.ts class that is not exported fails here.
    const dirs = ['common', 'schemas', 'producers', 'producers/context', 'producers/hooks', 'producers/outbox', 'consumers', 'store', 'queries', 'integrity', 'checkpoints', 'evidence']
    const exported = new Set<unknown>(Object.values(root))
    let classes = 0
    for (const dir of dirs) {
      if (!readdirSync(join(repoRoot(), dir)).includes('errors.ts')) continue
      const mod = (await import(join(repoRoot(), dir, 'errors.ts'))) as Record<string, unknown>
      for (const [name, value] of Object.entries(mod)) {
        if (typeof value !== 'function' || !(value === root.ReadtrailError || value.prototype instanceof root.ReadtrailError)) continue
        classes++
        expect(exported.has(value), `${dir}/errors.ts ${name} is exported from 'readtrail'`).toBe(true)
      }
    }
    expect(classes).toBeGreaterThanOrEqual(15)
    expect(root.isReadtrailError(new root.OutboxError('OUTBOX_FULL', 'full'))).toBe(true)
    expect(root.isReadtrailError(new Error('plain'))).toBe(false)
  })

  it('pins the key types an application compiles against', () => {
    expectTypeOf(root.createAuditProducer).parameter(0).toEqualTypeOf<AuditProducerConfigInput>()
    expectTypeOf(root.createAuditProducer).returns.resolves.toEqualTypeOf<AuditProducer>()
    expectTypeOf<AuditProducerConfigInput['service']>().toEqualTypeOf<string>()
    expectTypeOf<AuditProducer['recordRead']>().parameters.toEqualTypeOf<[ReadInput]>()
    expectTypeOf<AuditProducer['recordRead']>().returns.resolves.toEqualTypeOf<RecordedRead>()
    expectTypeOf<RecordedRead['durability']>().toEqualTypeOf<Durability>()
    expectTypeOf<Durability>().toEqualTypeOf<'acked' | 'outbox'>()
    expectTypeOf<ReadInput>().toHaveProperty('principal')
    expectTypeOf<ReadInput>().toHaveProperty('resource')
    expectTypeOf<ReadtrailError['code']>().toEqualTypeOf<ErrorCode>()
    expectTypeOf<ReadtrailError['retriable']>().toEqualTypeOf<boolean>()
    expectTypeOf(root.isReadtrailError).guards.toEqualTypeOf<ReadtrailError>()
    expectTypeOf<InstanceType<typeof root.AuditUnavailableError>>().toExtend<ReadtrailError>()
    expectTypeOf<InstanceType<typeof root.OutboxError>>().toExtend<ReadtrailError>()
    expectTypeOf<InstanceType<typeof root.StoreError>>().toExtend<ReadtrailError>()
    expectTypeOf<keyof typeof root.ERROR_CODES>().toEqualTypeOf<ErrorCode>()
  })
})
