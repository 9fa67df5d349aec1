import { describe, expect, it } from 'vitest'
import type { VerificationReport } from '../../integrity/report.js'
import { nextVerifyState, type OpenFailure, type VerifyState } from '../../integrity/verify-state.js'
import { assessProvenance, PROVENANCE_RANK, type ChainSource } from '../../queries/provenance.js'

const RUN_AT = '2026-11-27T12:59:00.000Z'
const NOW = Date.parse('2026-11-27T13:30:00.000Z')

/** A verify state as `readtrail verify` records it: per chain, how far it is verified and signed, and its open failures. */
function stateOf(chains: Record<string, { verified_through: number; signed?: number; failures?: Partial<OpenFailure>[]; verified_at?: string }>): VerifyState {
  return {
    format: 'readtrail-verify-state-v2',
    database: 'audit',
    updated_at: '2026-11-27T13:00:00.000Z',
    last_full_at: RUN_AT,
    chains: Object.fromEntries(
      Object.entries(chains).map(([chainId, c]) => [
        chainId,
        {
          anchor: null,
          verified_through: c.verified_through,
          verified_at: c.verified_through > 0 ? (c.verified_at ?? RUN_AT) : null,
          checkpoint_high: { index: 1, seq: c.signed ?? c.verified_through },
          last_run: {
            ok: (c.failures ?? []).length === 0,
            first_seq: 1,
            last_seq: Math.max(c.verified_through, c.signed ?? 0),
            at: RUN_AT,
            mode: 'in-db',
            incremental: false,
            covered: { rows_from: 0, checkpoints: 'both', views: true, producers: true, kafka: true },
          },
          failures: (c.failures ?? []).map((f) => ({ check: 'rows', from_seq: 1, kinds: ['hash_mismatch'], found_at: RUN_AT, ...f }) as OpenFailure),
        },
      ]),
    ),
    producers: {},
  }
}

const source = (chain_id: string, first_seq: number, last_seq: number, events = last_seq - first_seq + 1): ChainSource => ({ chain_id, first_seq, last_seq, events })

describe('assessProvenance', () => {
  it('calls a range verified when it ends at or below verified_through and a signature covers it, and carries the proof age', () => {
    const p = assessProvenance([source('orders/0', 3, 40)], stateOf({ 'orders/0': { verified_through: 40 } }), { signedThrough: { 'orders/0': 40 }, now: NOW })
    expect(p.status).toBe('verified')
    expect(p.chains).toEqual([
      {
        chain_id: 'orders/0',
        first_seq: 3,
        last_seq: 40,
        events: 38,
        status: 'verified',
        verified_through: 40,
        signed_through: 40,
        last_verified_at: RUN_AT,
        proof_age_ms: 31 * 60_000,
        last_verify_mode: 'in-db',
      },
    ])
    expect(p.verify_state_at).toBe('2026-11-27T13:00:00.000Z')
    expect(p.proof_age_ms).toBe(31 * 60_000)
    expect(p.summary).toBe('VERIFIED: built on orders/0 seq 3..40, all within signed ranges the last verification passed')
  })

  it('calls signed rows past verified_through unverified', () => {
    const p = assessProvenance([source('orders/0', 3, 41)], stateOf({ 'orders/0': { verified_through: 40 } }), { signedThrough: { 'orders/0': 50 }, now: NOW })
    expect(p.status).toBe('unverified')
    expect(p.summary).toBe('UNVERIFIED: this answer uses rows not yet verified: orders/0 seq 3..41 (verified only through 40); run readtrail verify and ask again to stand behind it')
  })

  it('calls rows after the newest signed checkpoint unsigned, whatever the state says', () => {
    // A state (or a forged one) claiming seq 60 verified does not cover rows no signature names.
    const p = assessProvenance([source('orders/0', 3, 55)], stateOf({ 'orders/0': { verified_through: 60 } }), { signedThrough: { 'orders/0': 50 }, now: NOW })
    expect(p.status).toBe('unsigned')
    expect(p.chains[0]).toMatchObject({ status: 'unsigned', signed_through: 50 })
    expect(p.summary).toBe(
      "UNSIGNED: this answer uses rows after their chain's newest signed checkpoint, which nothing outside the store vouches for yet: orders/0 seq 3..55 (signed only through 50); wait for the next checkpoint, run readtrail verify and ask again",
    )
  })

  it('calls a chain with no signed checkpoint at all unsigned (a chain forged from genesis)', () => {
    const p = assessProvenance([source('forged/9', 1, 5)], stateOf({ 'orders/0': { verified_through: 5 } }), { signedThrough: { 'orders/0': 5 }, now: NOW })
    expect(p.chains[0]).toMatchObject({ status: 'unsigned', signed_through: 0, verified_through: 0 })
    expect(p.summary).toContain('forged/9 seq 1..5 (no signed checkpoint)')
  })

  it('without signedThrough falls back to the highest checkpoint the state recorded', () => {
    const state = stateOf({ 'orders/0': { verified_through: 40, signed: 45 } })
    expect(assessProvenance([source('orders/0', 1, 44)], state, { now: NOW }).status).toBe('unverified')
    expect(assessProvenance([source('orders/0', 1, 46)], state, { now: NOW }).status).toBe('unsigned')
    expect(assessProvenance([source('orders/0', 1, 46)], state, { now: NOW }).chains[0]?.signed_through).toBeNull()
  })

  it('calls a range failed when it reaches an open failure, even below verified_through', () => {
    const state = stateOf({ 'orders/0': { verified_through: 80, failures: [{ check: 'views', from_seq: 30, kinds: ['view_mismatch'] }] } })
    expect(assessProvenance([source('orders/0', 1, 29)], state, { signedThrough: { 'orders/0': 80 } }).status).toBe('verified')
    const p = assessProvenance([source('orders/0', 1, 30)], state, { signedThrough: { 'orders/0': 80 } })
    expect(p.status).toBe('failed')
    expect(p.summary).toMatch(/^FAILED VERIFICATION: this answer uses rows in ranges where verification found damage no covering run has cleared: orders\/0 seq 1\.\.30/)
  })

  it('a failure of a source, not a chain ("(checkpoint file)"), fails every answer', () => {
    const state = stateOf({ 'orders/0': { verified_through: 80 }, '(checkpoint file)': { verified_through: 0, failures: [{ check: 'checkpoints', from_seq: 0 }] } })
    expect(assessProvenance([source('orders/0', 1, 10)], state, { signedThrough: { 'orders/0': 80 } }).status).toBe('failed')
  })

  it('ranks worst first: failed > unsigned > unverified > verified, whatever the order of chains', () => {
    expect(Object.entries(PROVENANCE_RANK).sort((a, b) => a[1] - b[1]).map(([s]) => s)).toEqual(['verified', 'unverified', 'unsigned', 'failed'])
    const state = stateOf({
      'orders/0': { verified_through: 100 },
      'orders/1': { verified_through: 10, signed: 30 },
      'orders/2': { verified_through: 20 },
      'orders/3': { verified_through: 4, failures: [{ from_seq: 5 }] },
    })
    const signedThrough = { 'orders/0': 100, 'orders/1': 30, 'orders/2': 20, 'orders/3': 40 }
    const all = [source('orders/0', 1, 100), source('orders/1', 5, 20), source('orders/2', 7, 25), source('orders/3', 2, 9)]
    const p = assessProvenance(all, state, { signedThrough })
    expect(p.chains.map((c) => c.status)).toEqual(['verified', 'unverified', 'unsigned', 'failed'])
    expect(p.status).toBe('failed')
    expect(assessProvenance([all[2]!, all[1]!, all[0]!], state, { signedThrough }).status).toBe('unsigned')
    expect(assessProvenance([all[1]!, all[0]!], state, { signedThrough }).status).toBe('unverified')
  })

  it('a failed query-time consistency check makes any answer failed, with the problems in the summary', () => {
    const state = stateOf({ 'orders/0': { verified_through: 40 } })
    const consistency = { ok: false, problems: ['access_by_principal lacks orders/0 seq 7'] }
    for (const sources of [[source('orders/0', 1, 40)], []]) {
      const p = assessProvenance(sources, state, { signedThrough: { 'orders/0': 40 }, consistency })
      expect(p.status).toBe('failed')
      expect(p.consistency).toEqual(consistency)
      expect(p.summary).toContain('access_by_principal lacks orders/0 seq 7')
    }
    expect(assessProvenance([source('orders/0', 1, 40)], state, { signedThrough: { 'orders/0': 40 }, consistency: { ok: true, problems: [] } }).status).toBe('verified')
  })

  it('says how old the proof is once it is more than a day old', () => {
    const state = stateOf({ 'orders/0': { verified_through: 40, verified_at: '2026-11-20T12:00:00.000Z' } })
    const p = assessProvenance([source('orders/0', 1, 40)], state, { signedThrough: { 'orders/0': 40 }, now: NOW })
    expect(p.status).toBe('verified')
    expect(p.proof_age_ms).toBe(NOW - Date.parse('2026-11-20T12:00:00.000Z'))
    expect(p.summary).toMatch(/\(the proof is 7 days old\)$/)
  })

  it('without any verify state calls every range unverified (or unsigned past the signatures)', () => {
    const p = assessProvenance([source('orders/0', 1, 3)], null, { signedThrough: { 'orders/0': 3 } })
    expect(p.status).toBe('unverified')
    expect(p.summary).toBe('UNVERIFIED: this answer uses rows not yet verified: orders/0 seq 1..3 (never verified); run readtrail verify and ask again to stand behind it')
    expect(assessProvenance([source('orders/0', 1, 4)], null, { signedThrough: { 'orders/0': 3 } }).status).toBe('unsigned')
  })

  it('an answer with no events stands on the whole log: its status and summary say whether absence is proven', () => {
    const never = assessProvenance([], null)
    expect(never).toMatchObject({ status: 'unverified', chains: [], verify_state_at: null, proof_age_ms: null })
    expect(never.summary).toBe('UNVERIFIED: no matching events, but the log has never been verified (run readtrail verify), so the absence is not proven either')
    const verified = assessProvenance([], stateOf({ 'orders/0': { verified_through: 9 } }), { now: NOW })
    expect(verified.status).toBe('verified')
    expect(verified.summary).toBe('VERIFIED: no matching events; the log passed its last verification at 2026-11-27T13:00:00.000Z')
    // Rows an attacker deleted are exactly what makes such an answer empty.
    const damaged = assessProvenance([], stateOf({ 'orders/0': { verified_through: 9 }, 'orders/1': { verified_through: 0, failures: [{ from_seq: 3 }] } }))
    expect(damaged.status).toBe('failed')
  })

  // Regression: an incremental run re-checks from its anchor checkpoint,
  // which lies at or below verified_through. When it finds an edited row
  // there, answers over the damaged rows must be failed, not verified.
  it('a range the last (incremental) run found damaged is failed, even below the old verified_through', () => {
    const report = (over: Partial<VerificationReport>): VerificationReport => ({
      mode: 'in-db',
      incremental: false,
      ok: true,
      database: 'audit',
      rows_verified: 0,
      views_checked: true,
      chains: [{ chain_id: 'orders/0', rows: 100, first_seq: 1, last_seq: 100, head_hash: 'ab'.repeat(32), unsigned_from_seq: null, unsigned_rows: 0, checkpoint: { index: 2, seq: 80, hash: 'cd'.repeat(32), signed_at: '2026-11-27T12:00:00.000Z' } }],
      checkpoints: { file: 'checkpoints.jsonl', topic: 't.checkpoints', total: 2, valid: 2, key_id: null },
      producers: { checked: 0, in_flight: [] },
      findings: [],
      findings_truncated: false,
      warnings: [],
      checkpoint_high: {},
      kafka_checked: false,
      started_at: '2026-11-27T12:00:00.000Z',
      duration_ms: 1,
      ...over,
    })
    const clean = nextVerifyState(null, report({}), {})
    // Verified means signed: rows 81..100 are after the newest checkpoint.
    expect(clean.chains['orders/0']?.verified_through).toBe(80)
    const damaged = nextVerifyState(
      clean,
      report({
        incremental: true,
        ok: false,
        views_checked: false,
        chains: [{ chain_id: 'orders/0', rows: 21, first_seq: 80, last_seq: 100, head_hash: 'ab'.repeat(32), unsigned_from_seq: 80, unsigned_rows: 21 }],
        findings: [{ chain_id: 'orders/0', seq: 78 + 12, kind: 'hash_mismatch', detail: 'row edited' }],
        started_at: '2026-11-27T13:00:00.000Z',
      }),
      {},
    )
    expect(damaged.chains['orders/0']?.last_run?.ok).toBe(false)
    expect(assessProvenance([source('orders/0', 70, 80)], damaged, { signedThrough: { 'orders/0': 100 } }).status).toBe('verified')
    expect(assessProvenance([source('orders/0', 85, 95)], damaged, { signedThrough: { 'orders/0': 100 } }).status).toBe('failed')
  })
})
