import { describe, expect, it } from 'vitest'
import type { VerificationReport } from '../../integrity/report.js'
import { nextVerifyState, type VerifyState } from '../../integrity/verify-state.js'
import { assessProvenance, type ChainSource } from '../../queries/provenance.js'

/** A verify state as `readtrail verify` writes it: per chain, how far it passed and its last run. */
function stateOf(chains: Record<string, { verified_through: number; ok: boolean; first_seq?: number; last_seq?: number; incremental?: boolean }>): VerifyState {
  return {
    format: 'readtrail-verify-state-v1',
    database: 'audit',
    updated_at: '2026-11-27T13:00:00.000Z',
    chains: Object.fromEntries(
      Object.entries(chains).map(([chainId, c]) => [
        chainId,
        {
          anchor: null,
          verified_through: c.verified_through,
          last_run: {
            ok: c.ok,
            first_seq: c.first_seq ?? 1,
            last_seq: c.last_seq ?? c.verified_through,
            at: '2026-11-27T12:59:00.000Z',
            mode: 'in-db',
            incremental: c.incremental ?? false,
          },
        },
      ]),
    ),
    producers: {},
  }
}

const source = (chain_id: string, first_seq: number, last_seq: number, events = last_seq - first_seq + 1): ChainSource => ({ chain_id, first_seq, last_seq, events })

describe('assessProvenance', () => {
  it('calls a range verified when it ends at or below verified_through, and carries the last run', () => {
    const p = assessProvenance([source('orders/0', 3, 40)], stateOf({ 'orders/0': { verified_through: 40, ok: true } }))
    expect(p.status).toBe('verified')
    expect(p.chains).toEqual([
      { chain_id: 'orders/0', first_seq: 3, last_seq: 40, events: 38, status: 'verified', verified_through: 40, last_verified_at: '2026-11-27T12:59:00.000Z', last_verify_mode: 'in-db' },
    ])
    expect(p.verify_state_at).toBe('2026-11-27T13:00:00.000Z')
    expect(p.summary).toBe('VERIFIED: built on orders/0 seq 3..40, all within ranges the last verification passed')
  })

  it('calls a range unverified when it reaches past verified_through after a clean run', () => {
    const p = assessProvenance([source('orders/0', 3, 41)], stateOf({ 'orders/0': { verified_through: 40, ok: true } }))
    expect(p.status).toBe('unverified')
    expect(p.chains[0]?.status).toBe('unverified')
    expect(p.summary).toBe('UNVERIFIED: this answer uses rows not yet verified: orders/0 seq 3..41 (verified only through 40); run readtrail verify and ask again to stand behind it')
  })

  it('calls a range failed when it reaches past verified_through after a run that found damage', () => {
    const p = assessProvenance([source('orders/0', 1, 12)], stateOf({ 'orders/0': { verified_through: 0, ok: false, last_seq: 50 } }))
    expect(p.status).toBe('failed')
    expect(p.chains[0]).toMatchObject({ status: 'failed', verified_through: 0, last_verify_mode: 'in-db' })
    expect(p.summary).toBe(
      'FAILED VERIFICATION: this answer uses rows in ranges whose last verification found damage: orders/0 seq 1..12 (never verified); do not rely on it before investigating (readtrail verify)',
    )
  })

  it('calls a chain the state does not know unverified, never verified', () => {
    const p = assessProvenance([source('orders/0', 1, 5), source('orders/1', 2, 9)], stateOf({ 'orders/0': { verified_through: 5, ok: true } }))
    expect(p.chains.map((c) => [c.chain_id, c.status, c.verified_through, c.last_verified_at, c.last_verify_mode])).toEqual([
      ['orders/0', 'verified', 5, '2026-11-27T12:59:00.000Z', 'in-db'],
      ['orders/1', 'unverified', 0, null, null],
    ])
    expect(p.status).toBe('unverified')
    // Only the chains at the overall status are named as the reason.
    expect(p.summary).toBe('UNVERIFIED: this answer uses rows not yet verified: orders/1 seq 2..9 (never verified); run readtrail verify and ask again to stand behind it')
  })

  it('takes the worst chain as the overall status, and names every chain at it', () => {
    const state = stateOf({
      'orders/0': { verified_through: 100, ok: true },
      'orders/1': { verified_through: 10, ok: true },
      'orders/2': { verified_through: 0, ok: false, last_seq: 30 },
      'orders/3': { verified_through: 4, ok: false, last_seq: 30, incremental: true },
    })
    const p = assessProvenance([source('orders/0', 1, 100), source('orders/1', 5, 20), source('orders/2', 7, 7), source('orders/3', 2, 9)], state)
    expect(p.chains.map((c) => c.status)).toEqual(['verified', 'unverified', 'failed', 'failed'])
    expect(p.status).toBe('failed')
    expect(p.summary).toBe(
      'FAILED VERIFICATION: this answer uses rows in ranges whose last verification found damage: orders/2 seq 7..7 (never verified), orders/3 seq 2..9 (verified only through 4); do not rely on it before investigating (readtrail verify)',
    )
    // Order does not decide the worst.
    expect(assessProvenance([source('orders/2', 7, 7), source('orders/0', 1, 100)], state).status).toBe('failed')
    expect(assessProvenance([source('orders/1', 5, 20), source('orders/0', 1, 100)], state).status).toBe('unverified')
  })

  it('without any verify state calls every range unverified and says verification never ran', () => {
    const p = assessProvenance([source('orders/0', 1, 3)], null)
    expect(p).toEqual({
      status: 'unverified',
      chains: [{ chain_id: 'orders/0', first_seq: 1, last_seq: 3, events: 3, status: 'unverified', verified_through: 0, last_verified_at: null, last_verify_mode: null }],
      verify_state_at: null,
      summary: 'UNVERIFIED: this answer uses rows not yet verified: orders/0 seq 1..3 (never verified); run readtrail verify and ask again to stand behind it',
    })
  })

  it('an answer with no events stands on the whole log: its status and summary say whether absence is proven', () => {
    const never = assessProvenance([], null)
    expect(never).toEqual({
      status: 'unverified',
      chains: [],
      verify_state_at: null,
      summary: 'UNVERIFIED: no matching events, but the log has never been verified (run readtrail verify), so the absence is not proven either',
    })

    const verified = assessProvenance([], stateOf({ 'orders/0': { verified_through: 9, ok: true } }))
    expect(verified.status).toBe('verified')
    expect(verified.summary).toBe('VERIFIED: no matching events; the log passed its last verification at 2026-11-27T13:00:00.000Z')

    // Rows an attacker deleted are exactly what makes such an answer empty.
    const damaged = assessProvenance([], stateOf({ 'orders/0': { verified_through: 9, ok: true }, 'orders/1': { verified_through: 0, ok: false, last_seq: 9 } }))
    expect(damaged.status).toBe('failed')
    expect(damaged.summary).toBe(
      'FAILED VERIFICATION: no matching events, but the last verification (2026-11-27T13:00:00.000Z) found damage in the log, so rows may have been removed',
    )
  })

  // Regression: an
  // incremental run re-checks from its anchor checkpoint, which lies at or
  // below verified_through. When it finds an edited row there,
  // nextVerifyState keeps the old verified_through, and assessProvenance,
  // which looks only at verified_through, keeps calling answers over the
  // damaged rows verified: against ProvenanceStatus's own definition
  // ("failed: some source rows lie in a range whose last verification found damage").
  it('a range the last (incremental) run found damaged is failed, even below the old verified_through', () => {
    const report = (over: Partial<VerificationReport>): VerificationReport => ({
      mode: 'in-db',
      incremental: false,
      ok: true,
      database: 'audit',
      rows_verified: 0,
      views_checked: false,
      chains: [{ chain_id: 'orders/0', rows: 100, first_seq: 1, last_seq: 100, head_hash: 'ab'.repeat(32), checkpoint: { index: 2, seq: 80, hash: 'cd'.repeat(32), signed_at: '2026-11-27T12:00:00.000Z' } }],
      checkpoints: { file: null, topic: null, total: 0, valid: 0, key_id: null },
      producers: { checked: 0, in_flight: [] },
      findings: [],
      findings_truncated: false,
      warnings: [],
      started_at: '2026-11-27T12:00:00.000Z',
      duration_ms: 1,
      ...over,
    })
    const clean = nextVerifyState(null, report({}), {})
    expect(clean.chains['orders/0']?.verified_through).toBe(100)
    // The next run starts at the anchor (seq 80) and finds seq 90 edited.
    const damaged = nextVerifyState(
      clean,
      report({
        incremental: true,
        ok: false,
        chains: [{ chain_id: 'orders/0', rows: 21, first_seq: 80, last_seq: 100, head_hash: 'ab'.repeat(32) }],
        findings: [{ chain_id: 'orders/0', seq: 90, kind: 'hash_mismatch', detail: 'row edited' }],
        started_at: '2026-11-27T13:00:00.000Z',
      }),
      {},
    )
    expect(damaged.chains['orders/0']?.last_run.ok).toBe(false)
    expect(assessProvenance([source('orders/0', 85, 95)], damaged).status).toBe('failed')
  })
})
