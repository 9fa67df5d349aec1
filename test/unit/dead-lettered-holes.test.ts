import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateKeyFiles, loadSigningKey } from '../../checkpoints/keys.js'
import { acknowledgeRequests } from '../../cli/verify-command.js'
import { ReadtrailError } from '../../common/errors.js'
import { VerificationError } from '../../integrity/errors.js'
import { findProducerBreaks, indexDeadLettered, judgeProducerBreaks, type DeadLetteredEvent } from '../../integrity/producer-gaps.js'
import type { Finding, VerificationReport } from '../../integrity/report.js'
import {
  acknowledge,
  acknowledgementCovers,
  applyAcknowledgements,
  findingFor,
  nextVerifyState,
  parseAcknowledgeTarget,
  readVerifyState,
  writeVerifyState,
} from '../../integrity/verify-state.js'
import { assessProvenance } from '../../queries/provenance.js'
import { thrownBy } from '../helpers/thrown.js'

const NOW = Date.UTC(2026, 10, 27, 12)
const row = (producer_id: string, producer_seq: number, agoMs = 600_000) => ({ producer_id, producer_seq, chain_id: 't/0', seq: producer_seq, ingested_at_us: (NOW - agoMs) * 1000 })
const letter = (producer_id: string, producer_seq: number, offset: number): DeadLetteredEvent => ({ producer_id, producer_seq, source: `t/1@${offset}`, code: 'MESSAGE_MALFORMED', chain_id: 't/1', seq: 9 })

describe('producer holes the writer refused are dead_lettered, not producer_gap', () => {
  it('a hole every seq of which a signed dead letter names is dead_lettered, at the source, with the letters', () => {
    const { breaks } = findProducerBreaks([1, 2, 5].map((s) => row('p', s)), new Map())
    const judged = judgeProducerBreaks(breaks, { nowMs: NOW, graceMs: 60_000, deadLettered: indexDeadLettered([letter('p', 3, 40), letter('p', 4, 41)]) })
    expect(judged.findings).toMatchObject([
      {
        kind: 'dead_lettered',
        chain_id: 't/1',
        seq: 9,
        producer: { producer_id: 'p', from_seq: 3, to_seq: 4 },
        dead_letters: [
          { producer_seq: 3, source: 't/1@40' },
          { producer_seq: 4, source: 't/1@41' },
        ],
      },
    ])
    expect(judged.findings[0]!.detail).toContain('--acknowledge producer:p:3')
  })

  it('is reported at once: a refused event is not in flight', () => {
    const { breaks } = findProducerBreaks([row('p', 1), row('p', 3, 1_000)], new Map())
    const judged = judgeProducerBreaks(breaks, { nowMs: NOW, graceMs: 60_000, deadLettered: indexDeadLettered([letter('p', 2, 7)]) })
    expect(judged.findings.map((f) => f.kind)).toEqual(['dead_lettered'])
    expect(judged.inFlight).toEqual([])
  })

  it('a hole only partly dead-lettered stays a producer_gap, naming the letters it has', () => {
    const { breaks } = findProducerBreaks([1, 2, 5].map((s) => row('p', s)), new Map())
    const judged = judgeProducerBreaks(breaks, { nowMs: NOW, graceMs: 60_000, deadLettered: indexDeadLettered([letter('p', 3, 40)]) })
    expect(judged.findings).toMatchObject([{ kind: 'producer_gap', seq: 5, producer: { from_seq: 3, to_seq: 4 }, dead_letters: [{ producer_seq: 3 }] }])
    expect(judged.findings[0]!.detail).toContain('1 of them refused by the chain writer')
  })

  it("another producer's letter explains nothing", () => {
    const { breaks } = findProducerBreaks([1, 3].map((s) => row('p', s)), new Map())
    const judged = judgeProducerBreaks(breaks, { nowMs: NOW, graceMs: 0, deadLettered: indexDeadLettered([letter('q', 2, 40)]) })
    expect(judged.findings.map((f) => f.kind)).toEqual(['producer_gap'])
  })
})

const A = 'orders/0'
const B = 'orders/1'
function report(findings: Finding[], over: Partial<VerificationReport> = {}): VerificationReport {
  return {
    mode: 'in-db',
    incremental: false,
    ok: findings.length === 0,
    database: 'audit',
    rows_verified: 200,
    views_checked: true,
    chains: [A, B].map((chain_id) => ({
      chain_id,
      rows: 100,
      first_seq: 1,
      last_seq: 100,
      head_hash: 'ab'.repeat(32),
      unsigned_from_seq: null,
      unsigned_rows: 0,
      checkpoint: { index: 4, seq: 100, hash: 'cd'.repeat(32), signed_at: '2026-11-27T12:00:00.000Z' },
    })),
    checkpoints: { file: 'checkpoints.jsonl', topic: 'orders.checkpoints', total: 8, valid: 8, key_id: null },
    producers: { checked: 2, in_flight: [] },
    findings,
    findings_truncated: false,
    warnings: [],
    checkpoint_high: {},
    kafka_checked: true,
    started_at: '2026-11-27T12:00:00.000Z',
    duration_ms: 1,
    ...over,
  }
}
const deadLettered = (seq: number, from: number, to = from): Finding => ({ chain_id: A, seq, kind: 'dead_lettered', detail: 'x', producer: { producer_id: 'p', from_seq: from, to_seq: to } })
const gap = (seq: number, from: number, to = from): Finding => ({ chain_id: A, seq, kind: 'producer_gap', detail: 'x', producer: { producer_id: 'p', from_seq: from, to_seq: to } })

describe('a dead-lettered hole fails no answer', () => {
  it('keeps the chain verified and its answers verified, while it stays open in the state', () => {
    const state = nextVerifyState(null, report([deadLettered(40, 7)]), {})
    expect(state.chains[A]!.failures).toMatchObject([{ check: 'dead_lettered', from_seq: 40, kinds: ['dead_lettered'] }])
    expect(state.chains[A]!.verified_through).toBe(100)
    const answer = assessProvenance([{ chain_id: A, first_seq: 30, last_seq: 90, events: 5 }], state, { now: NOW })
    expect(answer.status).toBe('verified')
    expect(assessProvenance([], state, { now: NOW }).status).toBe('verified')
  })

  it('a producer_gap still fails the answers over its chain from its seq (unchanged)', () => {
    const state = nextVerifyState(null, report([gap(40, 7)]), {})
    expect(state.chains[A]!.verified_through).toBe(0)
    expect(assessProvenance([{ chain_id: A, first_seq: 30, last_seq: 90, events: 5 }], state, { now: NOW }).status).toBe('failed')
    expect(assessProvenance([{ chain_id: B, first_seq: 30, last_seq: 90, events: 5 }], state, { now: NOW }).status).toBe('verified')
  })

  it('is cleared like a producer finding: by a full run that no longer finds it, not by an incremental one', () => {
    const open = nextVerifyState(null, report([deadLettered(40, 7)]), {})
    expect(nextVerifyState(open, report([], { incremental: true }), {}).chains[A]!.failures).toHaveLength(1)
    expect(nextVerifyState(open, report([]), {}).chains[A]!.failures).toEqual([])
  })
})

describe('acknowledging a hole', () => {
  const who = { by: 'ops@example', reason: 'INC-42: a test message from the staging producer' }
  const AT = '2026-11-27T12:05:00.000Z'

  it('targets parse, and anything else is USAGE', () => {
    expect(parseAcknowledgeTarget('producer:billing:api:7')).toEqual({ producer_id: 'billing:api', seq: 7 })
    expect(parseAcknowledgeTarget('orders/0:25')).toEqual({ chain_id: 'orders/0', seq: 25 })
    for (const bad of ['producer:7', 'orders/0', ':7', 'orders/0:x', 'orders/0:-1', 'producer:p:1e3']) expect(thrownBy(ReadtrailError, () => parseAcknowledgeTarget(bad))).toMatchObject({ code: 'USAGE' })
  })

  it('covers exactly the hole it was made for, never a later, wider or other one', () => {
    const hole = deadLettered(40, 7, 8)
    const ack = acknowledge(findingFor({ producer_id: 'p', seq: 8 }, [gap(12, 3), hole])!, who, AT)
    expect(ack).toMatchObject({ kind: 'dead_lettered', chain_id: A, seq: 40, producer: { producer_id: 'p', from_seq: 7, to_seq: 8 }, by: who.by, at: AT, reason: who.reason })
    expect(acknowledgementCovers(ack, hole)).toBe(true)
    expect(acknowledgementCovers(ack, { ...gap(41, 7, 8) })).toBe(true) // the same hole, reclassified
    expect(acknowledgementCovers(ack, deadLettered(40, 7, 9))).toBe(false) // grew
    expect(acknowledgementCovers(ack, deadLettered(60, 20))).toBe(false) // a later hole
    expect(acknowledgementCovers(ack, { ...hole, producer: { producer_id: 'q', from_seq: 7, to_seq: 8 } })).toBe(false)
    expect(acknowledgementCovers(ack, { ...hole, kind: 'producer_duplicate' })).toBe(false)
  })

  it('an offset_gap is acknowledged by chain, seq and its exact offsets', () => {
    const og: Finding = { chain_id: A, seq: 25, kind: 'offset_gap', detail: 'x', offsets: { from: '30', to: '31' } }
    const ack = acknowledge(findingFor({ chain_id: A, seq: 25 }, [og])!, who, AT)
    expect(acknowledgementCovers(ack, og)).toBe(true)
    expect(acknowledgementCovers(ack, { ...og, offsets: { from: '29', to: '31' } })).toBe(false)
    expect(findingFor({ chain_id: A, seq: 25 }, [{ ...og, kind: 'hash_mismatch' }])).toBeUndefined()
  })

  it('rows findings cannot be acknowledged', () => {
    expect(findingFor({ chain_id: A, seq: 5 }, [{ chain_id: A, seq: 5, kind: 'deleted_rows', detail: 'x' }])).toBeUndefined()
  })

  it('an acknowledged finding is listed apart and the rest stay open', () => {
    const ack = acknowledge(gap(40, 7), who, AT)
    const split = applyAcknowledgements([gap(40, 7), gap(90, 30)], [ack])
    expect(split.open).toEqual([gap(90, 30)])
    expect(split.acknowledged).toMatchObject([{ kind: 'producer_gap', seq: 40, acknowledged: { by: who.by, at: AT, reason: who.reason } }])
  })

  it('is kept in the signed state, and an edited acknowledgement does not verify', () => {
    const dir = mkdtempSync(join(tmpdir(), 'readtrail-ack-'))
    afterAll(() => rmSync(dir, { recursive: true, force: true }))
    generateKeyFiles(join(dir, 'verifier.key'))
    const key = loadSigningKey(join(dir, 'verifier.key'))
    const ack = acknowledge(gap(40, 7), who, AT)
    const state = nextVerifyState(null, report([]), {}, { acknowledgements: [ack] })
    const path = join(dir, 'state.json')
    writeVerifyState(path, state, key)
    expect(readVerifyState(path, 'audit', key)!.acknowledgements).toEqual([ack])
    // Kept by a later run that was not given them anew.
    expect(nextVerifyState(state, report([]), {}).acknowledgements).toEqual([ack])
    const file = JSON.parse(readFileSync(path, 'utf8')) as { acknowledgements: { producer: { to_seq: number } }[] }
    file.acknowledgements[0]!.producer.to_seq = 99
    writeFileSync(path, JSON.stringify(file))
    expect(thrownBy(VerificationError, () => readVerifyState(path, 'audit', key))).toMatchObject({ code: 'VERIFY_STATE_UNTRUSTED' })
  })

  it('a state without acknowledgements signs as before they existed', () => {
    expect('acknowledgements' in nextVerifyState(null, report([]), {})).toBe(false)
  })
})

describe('verify --acknowledge arguments', () => {
  it('need a reason and a well-formed target; who defaults to the OS user', () => {
    expect(acknowledgeRequests({})).toEqual([])
    expect(acknowledgeRequests({ acknowledge: ['producer:p:3'], acknowledgeReason: 'INC-1', acknowledgeBy: 'ops' })).toEqual([{ target: { producer_id: 'p', seq: 3 }, by: 'ops', reason: 'INC-1' }])
    expect(acknowledgeRequests({ acknowledge: ['orders/0:25'], acknowledgeReason: 'INC-1' })[0]!.by.length).toBeGreaterThan(0)
    expect(thrownBy(ReadtrailError, () => acknowledgeRequests({ acknowledge: ['producer:p:3'] }))).toMatchObject({ code: 'USAGE' })
    expect(thrownBy(ReadtrailError, () => acknowledgeRequests({ acknowledge: ['producer:p:3'], acknowledgeReason: '  ' }))).toMatchObject({ code: 'USAGE' })
    expect(thrownBy(ReadtrailError, () => acknowledgeRequests({ acknowledge: ['nonsense'], acknowledgeReason: 'x' }))).toMatchObject({ code: 'USAGE' })
  })
})
