import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import type { AuditProducer } from '../../producers/audit-producer.js'
import { AuditProducerConfig } from '../../producers/config.js'
import type { AlertDraft } from '../../producers/guard/alert-publisher.js'
import type { GuardConfigInput } from '../../producers/guard/guard-config.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'
import type { TableRead } from '../../producers/hooks/table-read.js'
import type { ParsedReadInput } from '../../schemas/read-input.js'
import { thrown } from '../helpers/thrown.js'

const signingKey = generateKeyPairSync('ed25519').privateKey

/** A producer that keeps what it was handed: reads (with the id it gave each) and alerts. */
function fakeProducer(withKey = true) {
  const reads: { input: ParsedReadInput; readId: string }[] = []
  const alerts: AlertDraft[] = []
  const producer = {
    producerId: 'fake',
    config: AuditProducerConfig.parse({ service: 'registry-api', ...(withKey ? { signingKey } : {}) }),
    enqueueParsedRead: (input: ParsedReadInput) => {
      const readId = randomUUID()
      reads.push({ input, readId })
      return readId
    },
    publishAlert: (draft: AlertDraft) => void alerts.push(draft),
  } as unknown as AuditProducer
  return { producer, reads, alerts }
}

const applicants = (ids: string[]): TableRead => ({ table: 'public.applicants', policy: 'fail-open', columns: ['id', 'full_name'], recordIds: ids, rowCount: ids.length, recordIdsComplete: true })
const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i))
const quiet = { logger: createLogger({ level: 'silent' }) }
const tables = { 'public.applicants': {}, 'public.documents': {} }
const user = (id: string) => ({ principal: { id, type: 'user' as const } })

function recorderWith(guard: GuardConfigInput, producer = fakeProducer()) {
  return { ...producer, recorder: createReadRecorder(producer.producer, { tables, guard }, quiet) }
}

describe('read recorder with the extraction guard (in-process)', () => {
  it('refuse: the read that would cross the budget throws EXTRACTION_LIMIT synchronously, is recorded denied with the ids it would have returned, and alerts once', () => {
    const { recorder, reads, alerts } = recorderWith({ budgets: { applicants: { tables: ['public.applicants'], limits: { user: { perMinute: 25 } } } } })
    for (let i = 0; i < 2; i++) expect(recorder.record([applicants(ids(100 + 10 * i, 10))], 'SELECT * FROM applicants WHERE id > $1', 'registry', user('scraper'))).toBeUndefined()
    const err = (() => {
      try {
        void recorder.record([applicants(ids(120, 10))], 'SELECT * FROM applicants WHERE id > $1', 'registry', user('scraper'))
      } catch (e) {
        return e
      }
    })()
    expect(err).toMatchObject({ name: 'HookError', code: 'EXTRACTION_LIMIT', retriable: false, details: { budget: 'applicants', window_seconds: 60, limit: 25, observed: 30, records_in_read: 10 } })
    const denied = reads.filter((r) => r.input.outcome === 'denied')
    expect(denied).toHaveLength(1)
    expect(denied[0]!.input).toMatchObject({ principal: { id: 'scraper' }, recordIds: ids(120, 10), resource: { database: 'registry', table: 'public.applicants' } })
    expect(alerts).toEqual([
      expect.objectContaining({ principal_id: 'scraper', principal_type: 'user', table_name: 'public.applicants', budget: 'applicants', window_seconds: 60, limit: 25, observed: 30, action: 'refuse', read_id: denied[0]!.readId, records_in_read: 10, db_name: 'registry' }),
    ])
    // A smaller read still fits; a second refusal within alertIntervalMs is recorded denied but not alerted again.
    expect(recorder.record([applicants(ids(200, 5))], undefined, 'registry', user('scraper'))).toBeUndefined()
    expect(() => recorder.record([applicants(ids(300, 1))], undefined, 'registry', user('scraper'))).toThrow(expect.objectContaining({ code: 'EXTRACTION_LIMIT' }))
    expect(alerts).toHaveLength(1)
    expect(recorder.stats()).toMatchObject({ recorded: 3, denied: 2, refused: 2, guard: { refused: 2 } })
    // Others have their own budget.
    expect(recorder.record([applicants(ids(100, 25))], undefined, 'registry', user('clerk'))).toBeUndefined()
  })

  it('alert: the read goes on, is counted, and the alert names the successful read', () => {
    const { recorder, reads, alerts } = recorderWith({ budgets: { applicants: { tables: ['public.applicants'], limits: { user: { perMinute: 5 } }, action: 'alert' } } })
    void recorder.record([applicants(ids(1, 5))], undefined, 'registry', user('u'))
    expect(recorder.record([applicants(ids(6, 3))], undefined, 'registry', user('u'))).toBeUndefined()
    expect(reads.map((r) => r.input.outcome)).toEqual(['success', 'success'])
    expect(alerts).toEqual([expect.objectContaining({ action: 'alert', observed: 8, limit: 5, read_id: reads[1]!.readId })])
  })

  it('counts a table group together, per principal type, and not the allowlisted batch service nor unlisted types', () => {
    const { recorder } = recorderWith({
      budgets: { registry: { tables: ['public.applicants', 'public.documents'], limits: { user: { perMinute: 10 }, service: { perMinute: 1000 } } } },
      allow: [{ id: 'nightly-export', type: 'service' }],
    })
    const documents = (n: number): TableRead => ({ ...applicants(ids(1, n)), table: 'public.documents' })
    expect(() => recorder.record([applicants(ids(1, 6)), documents(5)], undefined, 'registry', user('u'))).toThrow(expect.objectContaining({ code: 'EXTRACTION_LIMIT' }))
    expect(recorder.record([applicants(ids(1, 500)), documents(500)], undefined, 'registry', { principal: { id: 'api', type: 'service' } })).toBeUndefined()
    for (let i = 0; i < 3; i++) expect(recorder.record([applicants(ids(1, 5000))], undefined, 'registry', { principal: { id: 'nightly-export', type: 'service' } })).toBeUndefined()
    // A user named like the allowlisted service is not it.
    expect(() => recorder.record([applicants(ids(1, 11))], undefined, 'registry', user('nightly-export'))).toThrow(expect.objectContaining({ code: 'EXTRACTION_LIMIT' }))
    // System (no context) has no limit in this budget.
    expect(recorder.record([applicants(ids(1, 5000))], undefined, 'registry', undefined)).toBeUndefined()
  })

  it('counts anonymous requests per client address: one anonymous scraper cannot spend every visitor\'s budget', () => {
    const { recorder, alerts } = recorderWith({ budgets: { applicants: { tables: ['public.applicants'], limits: { system: { perMinute: 10 } } } } })
    const anon = (ip: string) => ({ clientIp: ip, principal: undefined })
    expect(() => recorder.record([applicants(ids(1, 11))], undefined, 'registry', anon('203.0.113.9'))).toThrow(expect.objectContaining({ code: 'EXTRACTION_LIMIT' }))
    expect(recorder.record([applicants(ids(1, 10))], undefined, 'registry', anon('198.51.100.4'))).toBeUndefined()
    expect(alerts[0]).toMatchObject({ principal_id: 'registry-api', principal_type: 'system', detail: expect.stringContaining('anonymous requests from 203.0.113.9') as unknown as string })
  })

  it('throttle: waits for room within throttleMaxMs and proceeds (recorded success, alert throttle); refuses at once when no room can come in time', async () => {
    const { recorder, reads, alerts } = recorderWith({ budgets: { applicants: { tables: ['public.applicants'], limits: { user: { perMinute: 10 } }, action: 'throttle' } }, throttleMaxMs: 200 })
    void recorder.record([applicants(ids(1, 10))], undefined, 'registry', user('u'))
    const t0 = Date.now()
    const err = await thrown(async () => recorder.record([applicants(ids(11, 1))], undefined, 'registry', user('u')))
    // Room comes back only after ~60 s: no point holding the connection 200 ms to refuse anyway.
    expect(Date.now() - t0).toBeLessThan(100)
    expect(err).toMatchObject({ code: 'EXTRACTION_LIMIT', message: expect.stringContaining('throttled') as unknown as string })
    expect(reads.at(-1)!.input.outcome).toBe('denied')
    expect(alerts.at(-1)).toMatchObject({ action: 'refuse', detail: expect.stringContaining('throttled') as unknown as string })
    // A read bigger than the whole budget can never fit: refused, not delayed.
    expect(() => recorder.record([applicants(ids(1, 11))], undefined, 'registry', user('v'))).toThrow(expect.objectContaining({ code: 'EXTRACTION_LIMIT' }))
  })

  it('refuses at start a guard whose alerts could not be signed (the producer has no signingKey)', () => {
    const { producer } = fakeProducer(false)
    expect(() => createReadRecorder(producer, { tables, guard: { budgets: { applicants: { tables: ['public.applicants'], limits: { user: { perMinute: 1 } } } } } }, quiet)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('signingKey') as unknown as string }),
    )
  })
})

describe('read recorder with the extraction guard, Redis unreachable (nothing listens on the port)', () => {
  const down = (onStoreDown: 'fail-open' | 'fail-closed') =>
    recorderWith({ budgets: { applicants: { tables: ['public.applicants'], limits: { user: { perMinute: 1 } }, onStoreDown } }, redis: { url: 'redis://127.0.0.1:1', timeoutMs: 30 } })

  it('fail-open: the read proceeds unchecked within the timeout, counted, and an `unchecked` alert goes out at a bounded rate', async () => {
    const { recorder, reads, alerts } = down('fail-open')
    for (let i = 0; i < 5; i++) await recorder.record([applicants(ids(1, 50))], undefined, 'registry', user('u'))
    expect(reads.map((r) => r.input.outcome)).toEqual(Array(5).fill('success'))
    expect(recorder.stats().guard).toMatchObject({ unchecked: 5 })
    expect(alerts).toEqual([expect.objectContaining({ action: 'unchecked', budget: 'applicants' })])
    await recorder.close()
  })

  it('fail-closed: GUARD_UNAVAILABLE (retriable), recorded denied, within the timeout', async () => {
    const { recorder, reads } = down('fail-closed')
    const t0 = Date.now()
    const err = await thrown(async () => recorder.record([applicants(ids(1, 2))], undefined, 'registry', user('u')))
    expect(Date.now() - t0).toBeLessThan(1500)
    expect(err).toMatchObject({ code: 'GUARD_UNAVAILABLE', retriable: true })
    expect(reads.map((r) => r.input.outcome)).toEqual(['denied'])
    await recorder.close()
  })
})
