import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { createAuditProducer, type AuditProducer } from '../../producers/audit-producer.js'
import { buildEvents, type EventContext } from '../../producers/build-events.js'
import { weakSessionKeyReason } from '../../producers/config.js'
import { ReadInput, type ReadInput as ReadInputType } from '../../schemas/read-input.js'
import { thrown } from '../helpers/thrown.js'

/**
 * Issue 11: what an application hands the SDK may be hostile or broken in
 * ways a schema never sees (a getter that throws, a Proxy, a Date subclass),
 * and a deployment may configure a key nobody should use. Each must come
 * back as a coded error or a warning, never an uncoded throw.
 */
const dirs: string[] = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

/** A producer that needs no broker: reads go to an outbox; the broker address refuses at once. */
async function offlineProducer(sessionHashKey: Buffer | string, lines: string[] = []): Promise<AuditProducer> {
  const dir = mkdtempSync(join(tmpdir(), 'rt-sdk-hostile-'))
  dirs.push(dir)
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString('utf8')), done()) })
  return createAuditProducer(
    { service: 'svc', kafka: { brokers: ['127.0.0.1:1'] }, sessionHashKey, outbox: { dir: join(dir, 'outbox') } },
    { logger: createLogger({ level: 'warn' }, sink) },
  )
}

const plain = (): ReadInputType => ({ principal: { id: 'alice' }, resource: { database: 'crm', table: 'customers' }, columns: ['id'], recordIds: ['1'] })
const SECRET = 'patient 4711 record'

describe('recordRead with a read whose properties throw when read', () => {
  it.each([
    ['a top-level getter', () => Object.defineProperty(plain(), 'columns', { enumerable: true, get: () => { throw new Error(SECRET) } })],
    ['a nested getter', () => ({ ...plain(), principal: Object.defineProperty({}, 'id', { enumerable: true, get: () => { throw new Error(SECRET) } }) })],
    ['a Proxy whose get trap throws', () => new Proxy(plain(), { get: () => { throw new Error(SECRET) } })],
    ['a Proxy whose ownKeys trap throws', () => new Proxy(plain(), { ownKeys: () => { throw new Error(SECRET) } })],
    ['a thrown non-Error', () => Object.defineProperty(plain(), 'recordIds', { enumerable: true, get: () => { throw SECRET } })],
  ])('%s: rejects INPUT_INVALID, not an uncoded Error, and keeps the thrown text out of the message (regression)', async (_what, make) => {
    const producer = await offlineProducer(randomBytes(32))
    try {
      let call: Promise<unknown> | undefined
      expect(() => (call = producer.recordRead(make() as ReadInputType))).not.toThrow()
      const err = await thrown(call!)
      expect(err).toMatchObject({ code: 'INPUT_INVALID', retriable: false, details: { issues: [{ field: '(read)' }] } })
      expect((err as Error).message).not.toContain(SECRET)
    } finally {
      await producer.close()
    }
  })

  it('a Date subclass that lies in getTime: INPUT_INVALID (the event takes the real time value, which is invalid)', async () => {
    class LyingDate extends Date {
      override getTime(): number {
        return 1_700_000_000_000
      }
    }
    const producer = await offlineProducer(randomBytes(32))
    try {
      const err = await thrown(producer.recordRead({ ...plain(), occurredAt: new LyingDate(Number.NaN) }))
      expect(err).toMatchObject({ code: 'INPUT_INVALID', details: { issues: [{ field: 'occurredAt' }] } })
    } finally {
      await producer.close()
    }
  })
})

describe('buildEvents reads a Date from its internal slot', () => {
  const ctx: EventContext = { service: 's', environment: 'e', producerId: 'p', sessionHashKey: undefined, sqlDialect: 'postgres', recordIdBudget: () => 65536, maxMessageBytes: 65536 }
  it('an overridden getTime does not change occurred_at', () => {
    class ShiftedDate extends Date {
      override getTime(): number {
        return 0
      }
    }
    const parsed = ReadInput.parse({ ...plain(), occurredAt: new Date(1_700_000_000_000) })
    const [event] = buildEvents({ ...parsed, occurredAt: new ShiftedDate(1_700_000_000_000) }, ctx)
    expect(event!.occurred_at).toBe(1_700_000_000_000_000)
  })

  it('an object that only claims to be a Date is INPUT_INVALID', () => {
    const parsed = ReadInput.parse(plain())
    const fake = Object.create(Date.prototype) as Date
    let err: unknown
    try {
      buildEvents({ ...parsed, occurredAt: fake }, ctx)
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ code: 'INPUT_INVALID', details: { issues: [{ field: 'occurredAt' }] } })
  })
})

describe('createAuditProducer options that throw when read', () => {
  it('CONFIG_INVALID, not an uncoded Error', async () => {
    const options = Object.defineProperty({ service: 'svc' }, 'topic', { enumerable: true, get: () => { throw new Error('boom') } })
    expect(await thrown(createAuditProducer(options as never))).toMatchObject({ code: 'CONFIG_INVALID', details: { issues: [{ key: '(root)' }] } })
  })
})

describe('a sessionHashKey that looks like a placeholder', () => {
  it.each([
    ['all zeros', Buffer.alloc(32)],
    ['one repeated byte', Buffer.alloc(32, 7)],
    ['one repeated character', 'k'.repeat(32)],
    ['a short pattern repeated', 'abcd'.repeat(8)],
  ])('%s is named as weak', (_what, key) => {
    expect(weakSessionKeyReason(Buffer.from(key))).toEqual(expect.any(String))
  })

  it.each([
    ['random bytes', randomBytes(32)],
    ['random hex text', randomBytes(32).toString('hex')],
    ['random base64 text', randomBytes(33).toString('base64')],
  ])('%s is not', (_what, key) => {
    expect(weakSessionKeyReason(Buffer.from(key))).toBeUndefined()
  })

  it('is warned about once through the SDK logger at configuration time, without the key; a random key is not (regression: accepted silently)', async () => {
    const lines: string[] = []
    const weak = await offlineProducer(Buffer.alloc(32), lines)
    await weak.close()
    const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string; reason?: string }).filter((l) => l.msg.startsWith('sessionHashKey looks like a placeholder'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ level: 40, reason: 'it is all zero bytes' })
    expect(lines.join('')).not.toContain(Buffer.alloc(32).toString('hex'))

    const quiet: string[] = []
    const strong = await offlineProducer(randomBytes(32), quiet)
    await strong.close()
    expect(quiet.join('')).not.toContain('sessionHashKey')
  })
})
