import { describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import type { AuditProducer } from '../../producers/audit-producer.js'
import { AuditProducerConfig } from '../../producers/config.js'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import type { Durability } from '../../producers/delivery.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'
import type { TableRead } from '../../producers/hooks/table-read.js'
import type { ParsedReadInput } from '../../schemas/read-input.js'

type Settle = (err: Error | undefined, durability?: Durability) => void

/** A producer that records what it was handed and settles when the test says so. */
function fakeProducer() {
  const enqueued: { input: ParsedReadInput; settle: Settle }[] = []
  const validated: unknown[] = []
  const producer = {
    producerId: 'fake',
    config: AuditProducerConfig.parse({ service: 'ward-app' }),
    enqueueParsedRead: (input: ParsedReadInput, settle: Settle) => void enqueued.push({ input, settle }),
    recordRead: (input: unknown) => {
      validated.push(input)
      return Promise.reject(Object.assign(new Error('record_ids.0: at most 512 characters'), { code: 'INPUT_INVALID' }))
    },
  } as unknown as AuditProducer
  return { producer, enqueued, validated }
}

const read = (over: Partial<TableRead> = {}): TableRead => ({
  table: 'public.patients',
  policy: 'fail-open',
  columns: ['id', 'phone'],
  recordIds: ['1', '2'],
  rowCount: 2,
  recordIdsComplete: true,
  ...over,
})
const quiet = { logger: createLogger({ level: 'silent' }) }
const tables = { 'public.patients': {} }

describe('read recorder', () => {
  it('hands fail-open reads over and lets the rows go at once; a later failure is counted, never thrown', async () => {
    const { producer, enqueued } = fakeProducer()
    const recorder = createReadRecorder(producer, { tables }, quiet)
    const wait = runWithAuditContext({ principal: { id: 'nurse.ada' }, purpose: 'care', clientIp: '10.0.0.7' }, () => recorder.record([read()], 'SELECT id, phone FROM patients WHERE id = $1', 'ward'))
    expect(wait).toBeUndefined()
    expect(enqueued[0]!.input).toMatchObject({
      principal: { id: 'nurse.ada', type: 'user' },
      purpose: 'care',
      clientIp: '10.0.0.7',
      resource: { database: 'ward', table: 'public.patients' },
      recordIds: ['1', '2'],
      queryFingerprint: 'SELECT id, phone FROM patients WHERE id = $1',
    })
    enqueued[0]!.settle(Object.assign(new Error('outbox full'), { code: 'OUTBOX_FULL' }))
    expect(recorder.stats()).toMatchObject({ recorded: 1, unrecorded: 1, refused: 0 })
  })

  it('holds fail-closed rows until the event is durable, and refuses them on failure or at the deadline', async () => {
    const { producer, enqueued } = fakeProducer()
    const recorder = createReadRecorder(producer, { tables, durableWithinMs: 50 }, quiet)
    const ok = recorder.record([read({ policy: 'fail-closed' })], undefined, 'ward', { principal: { id: 'a', type: 'user' } })
    enqueued[0]!.settle(undefined, 'outbox')
    await expect(ok).resolves.toBeUndefined()

    const failed = recorder.record([read({ policy: 'fail-closed' })], undefined, 'ward', { principal: { id: 'a', type: 'user' } })
    enqueued[1]!.settle(new Error('broker gone'))
    await expect(failed).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', retriable: true })

    const late = recorder.record([read({ policy: 'fail-closed' })], undefined, 'ward', { principal: { id: 'a', type: 'user' } })
    await expect(late).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' })
    expect(recorder.stats().refused).toBe(2)
  })

  it('records reads outside any context as the service, type system; strict mode refuses them and incomplete keys before recording', () => {
    const { producer, enqueued } = fakeProducer()
    void createReadRecorder(producer, { tables }, quiet).record([read()], undefined, 'ward')
    expect(enqueued[0]!.input.principal).toEqual({ id: 'ward-app', type: 'system' })

    const strict = createReadRecorder(producer, { tables, strict: true }, quiet)
    expect(() => strict.record([read()], undefined, 'ward')).toThrow(expect.objectContaining({ code: 'CONTEXT_MISSING' }) as Error)
    const ctx = { principal: { id: 'a', type: 'user' as const } }
    expect(() => strict.record([read({ recordIdsComplete: false, recordIds: [] })], undefined, 'ward', ctx)).toThrow(expect.objectContaining({ code: 'RECORD_IDS_INCOMPLETE' }) as Error)
    expect(enqueued).toHaveLength(1)
  })

  it('refuses an oversize read before recording it', () => {
    const { producer, enqueued } = fakeProducer()
    const recorder = createReadRecorder(producer, { tables, maxRowsPerRead: 10 }, quiet)
    expect(() => recorder.record([read({ rowCount: 11 })], undefined, 'ward')).toThrow(expect.objectContaining({ code: 'READ_TOO_LARGE' }) as Error)
    expect(enqueued).toHaveLength(0)
    expect(recorder.stats().refused).toBe(1)
  })

  it('sends a record id longer than the schema allows through the validating path, where it is refused loudly', async () => {
    const { producer, enqueued, validated } = fakeProducer()
    const recorder = createReadRecorder(producer, { tables }, quiet)
    void recorder.record([read({ recordIds: ['x'.repeat(600)] })], undefined, 'ward')
    await new Promise((r) => setImmediate(r))
    expect(enqueued).toHaveLength(0)
    expect(validated).toHaveLength(1)
    expect(recorder.stats().unrecorded).toBe(1)
  })

  it('validates its configuration once, naming each bad key', () => {
    const { producer } = fakeProducer()
    expect(() => createReadRecorder(producer, { tables: { t: { policy: 'sometimes' as 'fail-open' } }, durableWithinMs: 1 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/tables\.t\.policy[\s\S]*durableWithinMs/) as string }) as Error,
    )
  })
})
